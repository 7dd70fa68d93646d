"The effort-conditioned model of issue 21, item 1: scaler, model, data, trainer, checkpoints, options, inference, CLI."
import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from ebird_vae.data import create_dataloaders, split_train_val
from ebird_vae.ebd import build_species_matrix
from ebird_vae.ebd.sample import sample_path
from ebird_vae.ebd.schema import EBirdDataError, EBirdDataWarning
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import Checkpoint, model_from_checkpoint, set_seed, train_variational_autoencoder


@pytest.fixture(scope='module')
def sm():
    "The bundled synthetic sample (no real eBird records), cut to a few hundred checklists to keep the tests quick."
    full = build_species_matrix(sample_path())
    return replace(full, X=full.X[:600], checklists=full.checklists.iloc[:600])


def table(**columns):
    "Checklist metadata with the effort columns, one row per value given (made-up values)."
    base = dict(protocol=['Traveling', 'Stationary'], duration_minutes=[60.0, 10.0], effort_distance_km=[2.0, np.nan],
                number_observers=[1.0, 3.0], observation_date=pd.to_datetime(['2024-01-01', '2024-07-01']),
                time_observations_started=['06:00:00', '18:00:00'])
    return pd.DataFrame({**base, **columns}, index=['S1', 'S2'])


# --- the scaler
def test_scaler_features_missing_and_unseen():
    from ebird_vae.effort import EffortScaler
    s = EffortScaler().fit(table())
    assert s.feature_names[:2] == ['protocol=Stationary', 'protocol=Traveling'] and s.n_features == 14
    c = s.transform(table())
    assert c.dtype == np.float32 and c.shape == (2, 14)
    names = s.feature_names
    assert c[1, names.index('log_distance')] == pytest.approx(-1.0)   # stationary: 0 km, below the mean of (log1p 2, 0)
    assert c[:, names.index('distance_missing')].tolist() == [0.0, 0.0]
    with pytest.warns(EBirdDataWarning, match=r"not trained on \(\{'Area': 1\}"):
        odd = s.transform(table(protocol=['Area', 'Traveling'], duration_minutes=[np.nan, 60.0]))
    assert odd[0, :2].tolist() == [0.0, 0.0] and odd[0, names.index('duration_missing')] == 1.0 and odd[0, names.index('log_duration')] == 0.0


def test_scaler_errors_and_round_trip():
    from ebird_vae.effort import EffortScaler
    with pytest.raises(EBirdDataError, match=r"no column\(s\) \['duration_minutes'\].*SpeciesMatrix.checklists"):
        EffortScaler().fit(table().drop(columns='duration_minutes'))
    with pytest.raises(EBirdDataError, match="duration_minutes that is not a number >= 0"):
        EffortScaler().fit(table(duration_minutes=[-5.0, 10.0]))
    s = EffortScaler().fit(table())
    back = EffortScaler.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(back.transform(table()), s.transform(table()))
    r = s.row(protocol='Traveling', duration_minutes=60)
    np.testing.assert_allclose(r[0, 2], s.transform(table())[0, 2], atol=1e-6)   # the same 60 minutes as checklist S1
    assert r[0, s.feature_names.index('log_observers')] == 0.0 and r[0, -5:].tolist() == [0.0] * 5


# --- the model
def test_conditioned_model_and_unchanged_plain_model():
    cm = VariationalAutoencoder(6, 2, 8, n_covariates=3)
    assert cm.config['n_covariates'] == 3 and 'n_covariates' not in VariationalAutoencoder(6, 2, 8).config
    x, c = torch.ones(4, 6), torch.randn(4, 3)
    assert cm(x, c)[0].shape == (4, 6)
    with pytest.raises(ValueError, match='pass `c`'): cm(x)
    torch.manual_seed(0); a = VariationalAutoencoder(6, 2, 8)
    torch.manual_seed(0); b = VariationalAutoencoder(6, 2, 8, n_covariates=0)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


# --- data, trainer, checkpoint, options
def test_split_effort_fits_on_training_rows(sm):
    from ebird_vae.effort import EffortScaler
    tr, va = split_train_val(sm, None, split='locality', effort=True)
    x, c = tr[[0, 1]]
    assert x.shape == (2, len(sm.species)) and c.shape == (2, tr.effort_scaler.n_features)
    rows = sm.checklists.loc[tr.checklist_ids]
    np.testing.assert_array_equal(tr.covariates.numpy(), EffortScaler().fit(rows).transform(rows))
    plain, _ = split_train_val(sm, None, split='locality')
    assert plain.covariates is None and plain.effort_scaler is None and torch.equal(plain.data, tr.data)
    with pytest.raises(EBirdDataError, match="effort=True reads each checklist's effort"):
        split_train_val(sm.X, sm.species, effort=True)


def test_trainer_checkpoint_and_recall_selection(sm, tmp_path):
    from ebird_vae.training.options import validation_masks
    tr, va = split_train_val(sm, None, split='locality', effort=True)
    set_seed(0)
    m = VariationalAutoencoder(len(sm.species), 4, 32, n_covariates=tr.effort_scaler.n_features)
    tl, vl = create_dataloaders(tr, va, batch_size=64)
    assert len(validation_masks(vl)) == 3
    with redirect_stdout(io.StringIO()) as log:
        train_variational_autoencoder(m, tl, vl, num_epochs=3, progress=False, checkpoint_dir=tmp_path, recall_patience=2,
                                      calibrate=True, prior='composite', save_every=1)
    assert 'Calibrated on the validation checklists' in log.getvalue() and m.temperature.item() != 1.0
    ck = Checkpoint.load(tmp_path/'final_model.pt')
    assert ck.effort_scaler == tr.effort_scaler.to_dict() and ck.config['effort'] is True
    assert Checkpoint.load(tmp_path/'checkpoint_epoch_1.pt').effort_scaler == ck.effort_scaler
    rebuilt = model_from_checkpoint(tmp_path/'final_model.pt')
    assert rebuilt.n_covariates == m.n_covariates and rebuilt.effort_scaler.feature_names == tr.effort_scaler.feature_names


# --- inference and the model object
def test_embedder_reads_effort_and_complete_overrides(sm, tmp_path):
    from ebird_vae.inference import ChecklistEmbedder
    tr, va = split_train_val(sm, None, split='locality', effort=True)
    set_seed(0)
    m = VariationalAutoencoder(len(sm.species), 4, 32, n_covariates=tr.effort_scaler.n_features)
    with redirect_stdout(io.StringIO()):
        train_variational_autoencoder(m, *create_dataloaders(tr, va), num_epochs=2, progress=False, checkpoint_dir=tmp_path)
    emb = ChecklistEmbedder.from_checkpoint(tmp_path/'final_model.pt')
    assert emb.embed(sm).shape == (len(sm), 4) and emb.surprise(sm).shape == (len(sm), 4)
    one = replace(sm, X=sm.X[:1], checklists=sm.checklists.iloc[:1])
    own, hour = emb.complete(one, k=5), emb.complete(one, k=5, effort=dict(protocol='Traveling', duration_minutes=600))
    assert not own.probability.equals(hour.probability)
    with pytest.raises(ValueError, match='which a plain matrix does not carry'): emb.embed(sm.matrix)
    with pytest.raises(ValueError, match='which a plain matrix does not carry'): emb.complete(['House Crow'])


def test_ebird_vae_effort_round_trip(tmp_path):
    from ebird_vae.data import load_ebird_data
    from ebird_vae.model import EBirdVAE
    ebd = load_ebird_data(sample_path(), nrows=8000)
    vae = EBirdVAE.from_ebd(ebd, 'spec', epochs=1, hidden_dim=16, latent_dim=2, effort=True, verbose=False)
    with redirect_stdout(io.StringIO()): vae.train()
    ask = dict(protocol='Traveling', duration_minutes=60)
    first = vae.complete(['Red-vented Bulbul'], k=3, effort=ask)
    vae.save(tmp_path/'run')
    pd.testing.assert_frame_equal(EBirdVAE.load(tmp_path/'run').complete(['Red-vented Bulbul'], k=3, effort=ask), first)


def test_cli_train_effort(tmp_path, monkeypatch):
    from ebird_vae.cli import main
    monkeypatch.chdir(tmp_path)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        code = main(['train', '--out', 'run', '--epochs', '1', '--hidden-dim', '16', '--latent-dim', '2', '--nrows', '8000', '--effort'])
    assert not code
    ck = Checkpoint.load(tmp_path/'run'/'final_model.pt')
    assert ck.config['effort'] is True and ck.model_config['n_covariates'] == len(ck.effort_scaler['features'])


# --- evaluation, and the EASE blend on a conditioned model
def test_evaluate_model_reads_effort_and_blends(sm, tmp_path):
    from ebird_vae.evaluation import evaluate_model
    from ebird_vae.inference import ChecklistEmbedder
    tr, va = split_train_val(sm, None, split='locality', effort=True)
    set_seed(0)
    m = VariationalAutoencoder(len(sm.species), 4, 32, n_covariates=tr.effort_scaler.n_features, ease_blend=True)
    with redirect_stdout(io.StringIO()) as log:
        train_variational_autoencoder(m, *create_dataloaders(tr, va, batch_size=64), num_epochs=2, progress=False,
                                      checkpoint_dir=tmp_path, calibrate=True)
    assert 'Blended with EASE' in log.getvalue() and m.blend_weights.tolist() != [1.0, 0.0, 0.0]   # BlendCB: from the model's option
    emb = ChecklistEmbedder.from_checkpoint(tmp_path/'final_model.pt')
    train, test = (replace(sm, X=sm.X[[sm.checklists.index.get_loc(i) for i in ids]], checklists=sm.checklists.loc[list(ids)])
                   for ids in (tr.checklist_ids, va.checklist_ids))
    report = evaluate_model(emb, train, test, iwae_samples=4, vae_samples=0, forest_trees=0, progress=False)
    vae = report.query("section == 'completion' and method == 'vae'")
    assert len(vae) and np.isfinite(vae.value).all() and 'vae_alone' in set(report.method)
    # the effort matters: the same checklists told they were all 10-minute stationary counts complete differently
    meta = sm.checklists.assign(protocol='Stationary', duration_minutes=10.0, effort_distance_km=np.nan)
    other = evaluate_model(emb, train.matrix, test.matrix, metadata=meta, iwae_samples=0, vae_samples=0, forest_trees=0, progress=False)
    key = "section == 'calibration' and method == 'vae_alone' and metric == 'ece'"
    assert abs(report.query(key).value.iloc[0] - other.query(key).value.iloc[0]) > 1e-4
    with pytest.raises(ValueError, match="conditioned on each checklist's effort, but the evaluation has no"):
        evaluate_model(emb, train.matrix, test.matrix, iwae_samples=0, vae_samples=0, forest_trees=0, progress=False)
