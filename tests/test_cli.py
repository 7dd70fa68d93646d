"The `ebird-vae` console command, run as a user runs it: as a subprocess of the installed script."
import errno, json, os, shlex, shutil, signal, subprocess
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest
import torch

from ebird_vae.cli import main
from ebird_vae.presets import PRESETS
from ebird_vae.ebd.sample import sample_path

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}   # (one thread: quicker on a shared machine, and runs compare bit for bit)
SMALL = ['--nrows', 20000, '--hidden-dim', 32, '--latent-dim', 4]   # a small model on the first rows of the sample: seconds

def ebird_vae(*args, **kw):
    return subprocess.run(['ebird-vae', *map(str, args)], capture_output=True, text=True, timeout=600, env=ENV, **kw)

def in_process(capsys, *args) -> tuple[int, str, str]:
    "`ebird-vae ARGS` run by `main` in this process: (exit code, stdout, stderr)."
    try: code = main(list(map(str, args))) or 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A two-epoch run of `ebird-vae train` on the bundled sample, with a small model."
    out = tmp_path_factory.mktemp('cli')/'run'
    r = ebird_vae('train', '--out', out, '--epochs', 2, '--save_every', 1, '--hidden_dim', 64)
    assert r.returncode == 0, r.stderr
    return out, r

def test_no_progress_bar_when_output_is_not_a_terminal(trained):
    "Captured output (a pipe, as in a log file) gets the per-epoch lines but not the redrawn bar."
    _, r = trained
    assert 'Epoch 2/2 | Train Loss' in r.stdout
    assert '0.00%' not in r.stdout + r.stderr and '\r' not in r.stdout

def test_a_line_per_phase(trained):
    _, r = trained
    lines = r.stdout.splitlines()
    for phase in ['Reading and cleaning the bundled synthetic sample', 'Species matrix:', 'Split (random, seed 42):',
                  'Training (recommended preset) for 2 epochs on', 'Done: 2 epochs']:
        assert any(l.startswith(phase) for l in lines), phase
    assert any('ebird-vae embed' in l and 'final_model.pt' in l for l in lines), 'the closing lines suggest the next command'   # (issue 20)

def test_help_lists_commands_and_options():
    r = ebird_vae('--help')
    assert r.returncode == 0 and all(c in r.stdout for c in ['train', 'embed', 'evaluate'])
    r = ebird_vae('train', '--help')
    assert r.returncode == 0
    for opt in ['--data', '--out', '--epochs', '--batch-size', '--learning-rate', '--noise-std', '--latent-dim',
                '--hidden-dim', '--min-species-observations', '--resume', '--overwrite', '--seed', '--save-every',
                '--keep-best', '--no-keep-best', '--progress', '--no-progress']:
        assert opt in r.stdout, opt

def test_version_and_bare_command():
    r = ebird_vae('--version')
    assert r.returncode == 0 and r.stdout.startswith('ebird-vae 0.')
    r = ebird_vae()
    assert r.returncode == 2 and 'usage: ebird-vae' in r.stderr and 'train' in r.stderr

def test_train_on_bundled_sample(trained):
    out, r = trained
    assert 'bundled synthetic sample' in r.stdout
    for name in ['final_model.pt', 'history.json', 'training_curves.png', 'species.txt', 'run.json',
                 'checkpoints/checkpoint_epoch_1.pt', 'checkpoints/checkpoint_epoch_2.pt']:
        assert (out/name).exists(), name
    assert len(json.loads((out/'history.json').read_text())['train_loss']) == 2
    ck = torch.load(out/'final_model.pt', weights_only=True)
    meta = ck['metadata']
    assert meta['model_config']['hidden_dimension'] == 64
    assert len(meta['split']['val_ids']) == json.loads((out/'run.json').read_text())['n_val']
    assert meta['preset'] == 'recommended' and meta['data']['bundled_sample']
    assert {k: meta['config'][k] for k in ('corruption', 'noise_std', 'free_bits')} == \
           {k: PRESETS['recommended'][k] for k in ('corruption', 'noise_std', 'free_bits')}
    assert meta['config'] == dict(PRESETS['recommended'], epochs=2, save_every=1, hidden_dim=64, keep_last=2)   # the whole TrainConfig
    assert ck['optimizer_state_dict'] is not None   # written by the trainer: resumable like any checkpoint

def test_resume_continues_the_run(trained, tmp_path):
    out, _ = trained
    copy = tmp_path/'run'
    shutil.copytree(out, copy)
    r = ebird_vae('train', '--out', copy, '--epochs', 3, '--hidden_dim', 64, '--progress', 'False',
                  '--resume', copy/'checkpoints'/'checkpoint_epoch_2.pt')
    assert r.returncode == 0, r.stderr
    assert 'Resuming after epoch 2' in r.stdout
    history = json.loads((copy/'history.json').read_text())
    assert len(history['train_loss']) == 3
    assert history['val_loss'][:2] == json.loads((out/'history.json').read_text())['val_loss']

@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    "History of a small 20-epoch run that nothing interrupts."
    out = tmp_path_factory.mktemp('signals')/'straight'
    r = ebird_vae('train', '--out', out, '--epochs', 20, *SMALL)
    assert r.returncode == 0, r.stderr
    return json.loads((out/'history.json').read_text())

@pytest.mark.parametrize('sig, code', [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=['SIGINT', 'SIGTERM'])
def test_a_signal_saves_the_run_and_the_printed_command_resumes_it_exactly(sig, code, uninterrupted, tmp_path):
    out = tmp_path/'run'
    p = subprocess.Popen(['ebird-vae', 'train', '--out', str(out), '--epochs', '20', *map(str, SMALL)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith('Epoch '): p.send_signal(sig); break
    _, err = p.communicate(timeout=300)
    assert p.returncode == code, err
    assert (out/'checkpoints'/'interrupted.pt').exists() and not (out/'final_model.pt').exists()
    done = json.loads((out/'run.json').read_text())['epochs_completed']
    assert 1 <= done < 20 and len(json.loads((out/'history.json').read_text())['val_loss']) == done
    assert f'Stopped by {sig.name} after {done} of 20 epochs' in err and 'Traceback' not in err
    command = shlex.split(err.split('Continue with:')[1].strip().splitlines()[0])
    assert command[-2:] == ['--resume', str(out/'checkpoints'/'interrupted.pt')]
    r = subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    assert f'Resuming after epoch {done}' in r.stdout
    assert json.loads((out/'history.json').read_text()) == uninterrupted

def test_an_out_with_a_previous_run_is_refused_until_resume_or_overwrite(trained, tmp_path):
    out, _ = trained
    copy = tmp_path/'run'
    shutil.copytree(out, copy)
    (copy/'checkpoints'/'checkpoint_epoch_99.pt').write_bytes(b'stale')
    (copy/'notes.md').write_text('mine')
    before = (copy/'history.json').read_text()
    r = ebird_vae('train', '--out', copy, '--epochs', 1, *SMALL)
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert 'holds a previous run' in r.stderr and '--resume' in r.stderr and '--overwrite' in r.stderr
    assert (copy/'history.json').read_text() == before
    r = ebird_vae('train', '--out', copy, '--epochs', 1, *SMALL, '--overwrite')
    assert r.returncode == 0, r.stderr
    assert len(json.loads((copy/'history.json').read_text())['val_loss']) == 1
    assert not (copy/'checkpoints').exists()                      # (no checkpoint in one epoch: the old ones are gone)
    assert (copy/'notes.md').read_text() == 'mine'                # files that are not the run's stay
    assert torch.load(copy/'final_model.pt', weights_only=True)['metadata']['model_config']['hidden_dimension'] == 32

@pytest.mark.parametrize('extra, message', [
    (['--seed', 7], 'the train/validation split differs (random_seed=42 in the checkpoint, 7 here)'),
    (['--hidden-dim', 32], 'the model differs (hidden_dimension=64 in the checkpoint, 32 here)'),
    (['--min-species-observations', 60], 'the species vocabulary differs'),
], ids=['split', 'model', 'species'])
def test_resume_says_what_differs(trained, tmp_path, extra, message):
    out, _ = trained
    r = ebird_vae('train', '--out', tmp_path/'new', '--epochs', 3, '--hidden-dim', 64, *extra,
                  '--resume', out/'checkpoints'/'checkpoint_epoch_2.pt')
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert message in r.stderr, r.stderr
    assert not (tmp_path/'new').exists()

@pytest.mark.parametrize('args, message', [
    (['--epochs', -1], '--epochs must be a whole number >= 0, got -1'),
    (['--split', 'bogus'], "--split must be one of random, locality, spatial, got 'bogus'"),
    (['--val-size', 0], '--val-size must be a fraction between 0 and 1'),
    (['--batch-size', 0], '--batch-size must be a whole number >= 1, got 0'),
    (['--save-every', 0], '--save-every must be a whole number >= 1, got 0'),
    (['--noise-std', 5], '--noise-std must be a number in [0, 1]'),
    (['--likelihood', 'poisson'], "--likelihood must be one of bernoulli, multinomial, got 'poisson'"),
    (['--corruption', 'salt'], "--corruption must be one of 'gaussian', 'dropout', got 'salt'"),
    (['--preset', 'fast'], "Unknown preset 'fast': choose one of 'spec', 'recommended'"),
    (['--device', 'gpu'], "Unknown device 'gpu': choose one of cpu, cuda, mps"),
    (['--resume', 'a.pt', '--overwrite'], '--resume continues a run and --overwrite starts it again'),
    (['--max-distance-km', 'far'], "--max-distance-km must be a positive number, or none for no limit, got 'far'"),
    (['--max-observers', '0'], "--max-observers must be a positive whole number, or none for no limit, got '0'"),
    (['--date-range', '2021-02-30,'], '--date-range must be FIRST,LAST as YYYY-MM-DD dates'),
    (['--min-species-observations', 0], '--min-species-observations must be a whole number >= 1, got 0'),
    (['--grad-clip', 0], '--grad-clip must be a number > 0, got 0.0'),
])
def test_bad_options_fail_before_any_data_are_read(capsys, tmp_path, args, message):
    code, out, err = in_process(capsys, 'train', '--out', tmp_path/'o', *args)
    assert code == 1 and message in err, err
    assert err.count('\n') == 1 and 'Reading' not in out
    assert not (tmp_path/'o').exists()

def test_bad_option_as_a_subprocess_and_debug(tmp_path):
    r = ebird_vae('train', '--out', tmp_path/'o', '--epochs', -1)
    assert r.returncode == 1 and r.stderr == 'ebird-vae train: error: --epochs must be a whole number >= 0, got -1.\n'
    r = ebird_vae('train', '--out', tmp_path/'o', '--split', 'bogus', '--debug')
    assert r.returncode == 1 and 'Traceback' in r.stderr and r.stderr.strip().endswith("got 'bogus'.")
    assert not (tmp_path/'o').exists()

@pytest.mark.skipif(torch.backends.cuda.is_built(), reason='this PyTorch build has CUDA')
def test_cuda_on_a_cpu_build(tmp_path):
    r = ebird_vae('train', '--out', tmp_path/'o', '--device', 'cuda')
    assert r.returncode == 1
    assert r.stderr == ('ebird-vae train: error: cuda is not available in this PyTorch build: install a CUDA build '
                        'or use --device cpu\n')

def test_out_pointing_at_a_file(tmp_path):
    (tmp_path/'f').write_text('')
    r = ebird_vae('train', '--out', tmp_path/'f', '--epochs', 1)
    assert r.returncode == 1 and "is a file, not a folder" in r.stderr and 'Traceback' not in r.stderr

def test_a_full_disk_says_so_and_names_the_last_good_checkpoint(capsys, tmp_path):
    real, calls = torch.save, []
    def save(*a, **kw):
        calls.append(1)
        if len(calls) > 1: raise OSError(errno.ENOSPC, 'No space left on device')
        return real(*a, **kw)
    with patch('torch.save', side_effect=save):
        code, out, err = in_process(capsys, 'train', '--out', tmp_path/'run', '--epochs', 3, '--save-every', 1, *SMALL)
    assert code == 1 and err.count('\n') == 1, err
    assert 'the disk is full' in err and 'Training stopped after epoch 2' in err
    assert f"the last good checkpoint is '{tmp_path/'run'/'checkpoints'/'checkpoint_epoch_1.pt'}'" in err
    assert sorted(p.name for p in (tmp_path/'run'/'checkpoints').iterdir()) == ['checkpoint_epoch_1.pt']   # no half-written file

def test_embed_and_evaluate(trained, tmp_path):
    out, _ = trained
    r = ebird_vae('embed', out/'final_model.pt', sample_path(), '--output', tmp_path/'emb.parquet')
    assert r.returncode == 0, r.stderr
    assert '100.00%' not in r.stdout + r.stderr   # no progress bar into captured output
    emb = pd.read_parquet(tmp_path/'emb.parquet')
    assert len(emb) > 1000 and sum(c.startswith('z') for c in emb.columns) == 16
    # each checklist's part of the training split; the file cleaned as in training (its min_checklist_species too), so the
    # checklists with none of the model's species are left out as the fit left them out, and every one is train or validation
    run = json.loads((out/'run.json').read_text())
    counts = emb.split.value_counts()
    assert counts['train'] == run['n_train'] and counts['validation'] == run['n_val'], counts
    assert set(counts.index) == {'train', 'validation'} and len(emb) == run['n_train'] + run['n_val']
    assert not emb.no_known_species.any()
    assert "no_known_species: 0 checklists" in r.stdout and f"train {run['n_train']:,}" in r.stdout, r.stdout
    r = ebird_vae('embed', out/'final_model.pt', '--output', tmp_path/'default.parquet', '--no-sample')   # data: the training file
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path/'default.parquet'), emb)
    r = ebird_vae('evaluate', out/'final_model.pt', sample_path(), '--output_dir', tmp_path/'eval', '--iwae_samples', 5)
    assert r.returncode == 0, r.stderr
    assert '100.00%' not in r.stdout + r.stderr
    summary = (tmp_path/'eval'/'summary.md').read_text()
    assert 'recorded in the checkpoint' in summary
    for name in ['report.csv', 'latent_map.png', 'reliability.png', 'recall_at_k.png']: assert (tmp_path/'eval'/name).exists()

class Payload:
    "Pickles as a call of `os.system`: what a malicious checkpoint carries."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))

def test_unsafe_and_text_checkpoints_are_one_line_errors(trained, tmp_path):
    out, _ = trained
    evil, marker = tmp_path/'evil.pt', tmp_path/'pwned'
    ck = torch.load(out/'final_model.pt', weights_only=True)
    torch.save({**ck, 'metadata': Payload(marker)}, evil)
    r = ebird_vae('embed', evil, sample_path(), '--output', tmp_path/'e.parquet')
    assert r.returncode == 1 and 'Traceback' not in r.stderr and r.stderr.count('\n') == 1
    assert 'Refusing to load' in r.stderr and 'could run arbitrary code' in r.stderr
    assert not marker.exists()
    (tmp_path/'species.txt').write_text('House Crow\nCommon Myna\n')
    r = ebird_vae('embed', tmp_path/'species.txt', sample_path())
    assert r.returncode == 1 and 'is a text file, not a PyTorch checkpoint' in r.stderr and 'Traceback' not in r.stderr

def test_bad_input_is_a_clear_error(tmp_path):
    r = ebird_vae('train', '--data', tmp_path/'missing.txt', '--out', tmp_path/'o')
    assert r.returncode == 1 and 'missing.txt' in r.stderr and 'Traceback' not in r.stderr
    csv = tmp_path/'observations.csv'
    csv.write_text('GLOBAL UNIQUE IDENTIFIER,CATEGORY,COMMON NAME\nURN:1,species,House Crow\n')
    r = ebird_vae('train', '--data', csv, '--out', tmp_path/'o')
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert 'tab' in r.stderr.lower(), r.stderr
    assert not (tmp_path/'o').exists()
    r = ebird_vae('fly')
    assert r.returncode == 2 and "unknown command 'fly'" in r.stderr

def test_training_options_come_from_train_config():
    "Every field of TrainConfig is an option of `ebird-vae train`, and its help gives each preset's value."
    from dataclasses import fields
    from ebird_vae.presets import TrainConfig
    r = ebird_vae('train', '--help')
    text = ' '.join(r.stdout.split())
    for f in fields(TrainConfig): assert '--' + f.name.replace('_', '-') in text, f.name
    assert '(spec: 50; recommended: 80)' in text and '(spec: gaussian; recommended: dropout)' in text

def test_cleaning_filters_are_options(capsys, tmp_path):
    "The filters of build_species_matrix reach the preprocessor the model is saved with (issue 18)."
    code, out, err = in_process(capsys, 'train', '--out', tmp_path/'run', '--epochs', 1, *SMALL, '--max-distance-km', 'none',
                                '--max-duration-minutes', 600, '--protocols', 'Stationary,Traveling,Area', '--max-observers', 20)
    assert code == 0, err
    params = torch.load(tmp_path/'run'/'final_model.pt', weights_only=True)['metadata']['preprocessor']['params']
    assert (params['max_distance_km'], params['max_duration_minutes'], params['max_observers']) == (None, 600.0, 20)
    assert params['protocols'] == ['Stationary', 'Traveling', 'Area']
    assert json.loads((tmp_path/'run'/'run.json').read_text())['cleaning']['max_distance_km'] is None

def test_a_data_error_is_one_line(capsys, tmp_path):
    "An EBirdDataError from the data layer (here: the date range leaves no checklist) is one line, no traceback."
    code, out, err = in_process(capsys, 'train', '--out', tmp_path/'run', '--epochs', 1, *SMALL, '--date-range', '1900-01-01,1900-12-31')
    assert code == 1 and err.count('\n') == 1 and 'Traceback' not in err, err
    assert err.startswith('ebird-vae train: error: ') and 'Reading and cleaning' in out
    assert not (tmp_path/'run').exists()

def test_an_out_that_cannot_be_made_fails_before_reading(capsys, tmp_path):
    (tmp_path/'afile').write_text('')
    code, out, err = in_process(capsys, 'train', '--out', tmp_path/'afile'/'sub', '--epochs', 1, *SMALL)
    assert code == 1 and f"cannot be made: '{tmp_path/'afile'}' is a file" in err, err
    assert 'Reading' not in out

@pytest.mark.skipif(os.geteuid() == 0, reason='root may write anywhere: a read-only folder cannot be tested')
def test_an_unwritable_out_fails_before_reading(capsys, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    try: code, out, err = in_process(capsys, 'train', '--out', ro/'run', '--epochs', 1, *SMALL)
    finally: ro.chmod(0o700)
    assert code == 1 and 'you may not write in' in err and 'Reading' not in out

def test_export_writes_the_matrix_train_would_fit_on(capsys, tmp_path):
    "Issue 22: `ebird-vae export DATA --out FILE.parquet`, with train's cleaning options; bad options refused before reading."
    from ebird_vae.ebd import SpeciesMatrix, build_species_matrix, load_ebird_data
    code, out, err = in_process(capsys, 'export', sample_path(), '--out', tmp_path/'m.parquet', '--nrows', 20000, '--max-distance-km', 5)
    assert code == 0 and 'Parquet ->' in out, err
    back = SpeciesMatrix.from_parquet(tmp_path/'m.parquet')
    want = build_species_matrix(load_ebird_data(sample_path(), nrows=20000), 30, 1, max_distance_km=5.0)
    assert back.species == want.species and (back.X != want.X).nnz == 0 and back.checklists.index.equals(want.checklists.index)
    assert [p.name for p in tmp_path.iterdir()] == ['m.parquet']
    for args, message in [(['--out', tmp_path/'m.csv'], '--format must be h5ad or parquet'), (['--format', 'xlsx', '--out', tmp_path/'x'], "got 'xlsx'"),
                          ([], '--out is required'), (['--out', tmp_path/'n.parquet', '--min-checklist-species', 0], '--min-checklist-species must be')]:
        code, out, err = in_process(capsys, 'export', sample_path(), *args)
        assert code == 1 and message in err and 'Reading' not in out, (args, err)

def test_h5ad_without_anndata_is_refused_before_reading(capsys, tmp_path, monkeypatch):
    "`export --format h5ad` and `embed --h5ad` name the optional package when it is missing, before any data are read."
    import importlib.util
    (tmp_path/'a.h5ad').write_bytes(b'')
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'anndata' else real(name, *a))
    code, out, err = in_process(capsys, 'export', sample_path(), '--out', tmp_path/'m.h5ad')
    assert code == 1 and 'needs the optional package anndata: pip install anndata' in err and 'Reading' not in out, err
    code, out, err = in_process(capsys, 'embed', tmp_path/'no.pt', sample_path(), '--output', tmp_path/'e.csv', '--h5ad', tmp_path/'a.h5ad')
    assert code == 1 and '--h5ad needs the optional package anndata' in err, err
    code, out, err = in_process(capsys, 'embed', tmp_path/'no.pt', sample_path(), '--output', tmp_path/'e.csv', '--h5ad', tmp_path/'b.h5ad')
    assert code == 1 and "--h5ad '" in err and "is not an .h5ad file" in err, err
