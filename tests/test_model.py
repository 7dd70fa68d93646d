"`EBirdVAE`, the model object: the same run as `ebird-vae train`, save/load round trips, cleaning of new data, completion, errors."
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from ebird_vae.cli import main
from ebird_vae.data import build_species_matrix, load_ebird_data
from ebird_vae.ebd import drop_short_checklists
from ebird_vae.model import EBirdVAE
from ebird_vae.presets import preset
from ebird_vae.ebd.sample import sample_path
from ebird_vae.training import Checkpoint

TINY = dict(epochs=2, hidden_dim=32, latent_dim=4, batch_size=64, keep_last=2)   # (keep_last: `ebird-vae train`'s default)
NROWS = 20000   # the first rows of the bundled sample: some 800 checklists, seconds to train

@pytest.fixture(autouse=True)
def one_thread():
    "One thread: quicker on a shared machine, and two runs compare bit for bit."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def ebd(): return load_ebird_data(sample_path(), nrows=NROWS)

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A model trained through `EBirdVAE` on the first rows of the sample, and the folder it was saved to."
    torch.set_num_threads(1)
    vae = EBirdVAE.from_ebd(sample_path(), 'spec', nrows=NROWS, verbose=False, **TINY)
    vae.train()
    out = tmp_path_factory.mktemp('model')/'run'
    vae.save(out)
    return vae, out

def cli(*args) -> int:
    "`ebird-vae ARGS` run by `main` in this process: its exit code."
    try: return main(list(map(str, args))) or 0
    except SystemExit as e: return e.code

def cli_run(tmp_path, *args):
    out = tmp_path/'cli'
    argv = ['train', '--out', out, '--preset', 'spec', '--nrows', NROWS, '--epochs', 2, '--hidden-dim', 32, '--latent-dim', 4,
            '--batch-size', 64, '--device', 'cpu', *args]
    try: main(list(map(str, argv)))
    except SystemExit as e: assert not e.code, e.code
    return out

def test_same_checkpoint_as_the_cli(trained, tmp_path):
    "The API and `ebird-vae train`, same options and seed: the same keys, metadata, cleaning, split and weights."
    vae, out = trained
    cli = Checkpoint.load(cli_run(tmp_path)/'final_model.pt').to_dict()
    api = Checkpoint.load(out/'final_model.pt').to_dict()
    assert set(api) == set(cli)
    assert set(api['metadata']) == set(cli['metadata'])
    assert api['metadata']['preprocessor'] == cli['metadata']['preprocessor']
    assert api['metadata']['config'] == cli['metadata']['config']
    assert api['metadata']['split'] == cli['metadata']['split']
    for k, t in cli['model_state_dict'].items(): torch.testing.assert_close(api['model_state_dict'][k], t)
    assert sorted(p.name for p in out.iterdir()) == ['final_model.pt', 'history.json', 'run.json', 'species.txt', 'training_curves.png']

def test_load_then_embed_gives_the_same_numbers(trained):
    vae, out = trained
    before = vae.embed()
    for path in (out, out/'final_model.pt'):
        after = EBirdVAE.load(path).embed(vae._own_data())
        pd.testing.assert_frame_equal(after, before)

def test_cli_embed_reads_a_saved_model(trained, tmp_path):
    "`ebird-vae embed` on the folder `save` wrote: the training file found from the checkpoint, the model's numbers."
    vae, out = trained
    try: main(['embed', str(out/'final_model.pt'), '--output', str(tmp_path/'z.csv')])
    except SystemExit as e: assert not e.code
    z = pd.read_csv(tmp_path/'z.csv', index_col=0)
    mine = vae.embed(sample_path())
    np.testing.assert_allclose(z[mine.columns].to_numpy(), mine.loc[z.index.astype(str)].to_numpy(), atol=1e-5)

def test_transform_drops_short_checklists_as_the_fit_did(ebd):
    "A model trained on checklists of at least 3 of its species meets new data cleaned the same way (issue 19: transform ignored it)."
    from ebird_vae.data import EBirdPreprocessor
    pre = EBirdPreprocessor(min_species_observations=30, min_checklist_species=3)
    fitted = pre.fit_transform(ebd)
    assert (np.diff(fitted.X.indptr) >= 3).all()
    new = pre.transform(load_ebird_data(sample_path(), nrows=2 * NROWS).iloc[NROWS:])
    assert len(new) and (np.diff(new.X.indptr) >= 3).all()
    assert new.report.step.iloc[-1] == 'short checklists (<3)' and new.report.checklists_removed.iloc[-1] > 0

def test_cli_embed_goes_through_the_model_object(trained, tmp_path, capsys):
    "`ebird-vae embed` takes the run folder too, and a checkpoint without cleaning settings says to pass a species matrix."
    import dataclasses
    vae, out = trained
    assert cli('embed', out, sample_path(), '--output', tmp_path/'z.csv') == 0, capsys.readouterr().err
    z, mine = pd.read_csv(tmp_path/'z.csv', index_col=0), vae.embed(sample_path())
    np.testing.assert_allclose(z[mine.columns].to_numpy(), mine.loc[z.index.astype(str)].to_numpy(), atol=1e-5)
    bare = tmp_path/'bare.pt'
    dataclasses.replace(Checkpoint.load(out/'final_model.pt'), preprocessor=None).save(bare)
    capsys.readouterr()
    assert cli('embed', bare, sample_path(), '--output', tmp_path/'b.csv') == 1
    err = capsys.readouterr().err
    assert f"'{bare}' records no cleaning settings" in err and 'Pass a species matrix as DATA instead' in err and err.count('\n') == 1, err
    assert not (tmp_path/'b.csv').exists()
    vae.preprocessor.transform(sample_path()).matrix.to_csv(tmp_path/'m.csv')
    assert cli('embed', bare, tmp_path/'m.csv', '--output', tmp_path/'b.csv') == 0, capsys.readouterr().err
    b = pd.read_csv(tmp_path/'b.csv', index_col=0)
    np.testing.assert_allclose(b[mine.columns].to_numpy(), mine.loc[b.index.astype(str)].to_numpy(), atol=1e-5)

def test_embedding_its_own_data_stays_sparse(trained, monkeypatch):
    "Issue 22: `embed()` of the model's own checklists works from its sparse matrix, never the whole matrix dense."
    from ebird_vae.data import SpeciesDataset, SpeciesMatrix
    vae, _ = trained
    want = vae.embed(vae.matrix.matrix.sort_index())                       # (through the dense DataFrame)
    for cls, name in ((SpeciesDataset, 'data'), (SpeciesMatrix, 'matrix')):
        monkeypatch.setattr(cls, name, property(lambda self: pytest.fail('the whole matrix was made dense')))
    got = vae.embed()
    pd.testing.assert_frame_equal(got, want)
    assert got.index.is_monotonic_increasing and len(got) == sum(map(len, vae.datasets))

def test_cli_evaluate_reads_a_saved_model(trained, tmp_path, capsys):
    "`ebird-vae evaluate` on the folder `save` wrote: the training file and its held-out checklists, from the checkpoint."
    vae, out = trained
    try: main(['evaluate', str(out/'final_model.pt'), '--output-dir', str(tmp_path/'ev'), '--iwae-samples', '0'])
    except SystemExit as e: assert not e.code
    assert f"Evaluating on {len(vae.datasets[1]):,} held-out checklists (the training run's random split" in capsys.readouterr().out
    assert {'report.csv', 'summary.md'} <= {p.name for p in (tmp_path/'ev').iterdir()}

def test_embed_cleans_new_data_with_the_training_filters(ebd, tmp_path):
    "A model trained on checklists of at most 1 km embeds only such checklists of new data, not the builder's default 10 km."
    vae = EBirdVAE.from_ebd(ebd, 'spec', max_distance_km=1, protocols=['Traveling'], verbose=False, **TINY)
    vae.save(tmp_path/'run')
    new = load_ebird_data(sample_path(), nrows=2 * NROWS).iloc[NROWS:]
    wanted = drop_short_checklists(build_species_matrix(new, max_distance_km=1, protocols=['Traveling'], species=vae.species), 1).checklists.index
    default = drop_short_checklists(build_species_matrix(new, species=vae.species), 1).checklists.index
    assert len(wanted) < len(default)
    for model in (vae, EBirdVAE.load(tmp_path/'run')):
        with warnings.catch_warnings():
            warnings.simplefilter('error')   # (no "cleaned with the builder's defaults" warning)
            z = model.embed(new)
        assert sorted(z.index) == sorted(wanted)

def test_complete_never_suggests_a_species_on_the_checklist(trained):
    vae, _ = trained
    own = vae._own_data()
    done = vae.complete(own, k=5)
    assert (done.groupby('checklist_id').size() == 5).all() and len(done) == 5 * len(own)
    on_list = own.to_numpy()[own.index.get_indexer(done.checklist_id), [vae.species.index(s) for s in done.species]]
    assert not on_list.any()
    assert (done.groupby('checklist_id').probability.diff().dropna() <= 0).all()
    names = list(own.columns[own.iloc[0].to_numpy() > 0])
    one = vae.complete(names, k=len(vae.species))
    assert len(one) == len(vae.species) - len(names) and not set(one.species) & set(names)

def test_resume_is_explicit(ebd):
    vae = EBirdVAE.from_ebd(ebd, 'spec', verbose=False, **TINY)
    with pytest.raises(ValueError, match='it has none yet'): vae.train(resume=True)
    vae.train(epochs=1)
    assert len(vae.train(epochs=2, resume=True)['train_loss']) == 2
    with pytest.raises(ValueError, match=r"options differ \(learning_rate"): vae.train(epochs=3, resume=True, learning_rate=0.1)

@pytest.mark.parametrize('call, message', [
    (lambda ebd: EBirdVAE.from_ebd(ebd, 'fast'), "Unknown preset 'fast'"),
    (lambda ebd: EBirdVAE.from_ebd(ebd, {'epochs': 2}), "`config` takes a TrainConfig"),
    (lambda ebd: EBirdVAE.from_ebd(ebd, preset('spec'), epochs=-1, verbose=False), "`num_epochs` must be a whole number >= 0"),
    (lambda ebd: EBirdVAE.from_ebd(ebd, 'spec', max_distanse_km=2, verbose=False), "unknown option(s) ['max_distanse_km']"),
])
def test_bad_options_are_named(ebd, call, message):
    with pytest.raises((ValueError, TypeError)) as e: call(ebd)
    assert message in str(e.value)

def test_bad_use_is_explained(trained, tmp_path):
    vae, out = trained
    with pytest.raises(ValueError, match='`k` must be a whole number >= 1'): vae.complete(vae._own_data(), k=0)
    with pytest.raises(ValueError, match=r"None of \['Not a bird'\] is a species the model knows"): vae.complete(['Not a bird'])
    with pytest.raises(TypeError, match='a SpeciesMatrix, a checklists x species DataFrame'): vae.embed(42)
    with pytest.raises(FileNotFoundError, match='holds no final_model.pt'): EBirdVAE.load(tmp_path)
    (tmp_path/'file').write_text('x')
    with pytest.raises(ValueError, match='is a file'): vae.save(tmp_path/'file')
    loaded = EBirdVAE.load(out)
    with pytest.raises(ValueError, match='loaded without any'): loaded.train()
    with pytest.raises(ValueError, match='holds no data'): loaded.embed()
    assert 'no data attached' in repr(loaded) and '32' in repr(loaded)

def test_a_loaded_model_continues_its_run_or_fine_tunes(trained, ebd):
    "Given its training data, a loaded model resumes exactly; given other data it fine-tunes (a load arms no resume)."
    vae, out = trained
    again = EBirdVAE.load(out, data=ebd)
    assert len(again.train(epochs=3, resume=True)['train_loss']) == 3
    assert again.history['train_loss'][:2] == vae.history['train_loss']
    other = load_ebird_data(sample_path(), nrows=2 * NROWS).iloc[NROWS:]
    tuned = EBirdVAE.load(out, data=other)
    assert len(tuned.train(epochs=1)['train_loss']) == 1
    assert tuned.species == vae.species
