"Issue 21: early stopping and model selection on validation Recall@k, calibration, RecVAE's loss options, from every entry point."
import os, subprocess
from pathlib import Path

import pytest
import torch

from ebird_vae.models import VariationalAutoencoder, vae_loss
from ebird_vae.presets import PRESETS, TrainConfig, preset
from ebird_vae.training import Checkpoint, model_from_checkpoint

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
SMALL = ['--nrows', 20000, '--hidden-dim', 32, '--latent-dim', 4]


def test_options_are_config_fields_off_in_spec():
    "Each option is a `TrainConfig` field; `spec` turns none on (its runs are unchanged)."
    spec = PRESETS['spec']
    assert (spec.recall_patience, spec.calibrate, spec.kl_per_species, spec.prior, spec.alternating) == (None, False, False, 'normal', False)
    with pytest.raises(ValueError, match='--prior must be one of normal, composite'): TrainConfig(prior='flat').validate(cli=True)


def test_a_checkpoint_without_a_temperature_loads_uncalibrated(tmp_path):
    "Checkpoints written before calibration (no `temperature` in the weights) load, with temperature 1; a calibrated one keeps its own."
    m = VariationalAutoencoder(12, 3, 8)
    m.temperature.fill_(2.5)
    old = {k: v for k, v in m.state_dict().items() if k != 'temperature'}
    Checkpoint(old, 1, model_config=m.config).save(tmp_path/'old.pt')
    Checkpoint(m.state_dict(), 1, model_config=m.config).save(tmp_path/'new.pt')
    assert model_from_checkpoint(tmp_path/'old.pt').temperature.item() == 1.0
    assert model_from_checkpoint(tmp_path/'new.pt').temperature.item() == 2.5
    z = torch.randn(2, 3)
    loaded = model_from_checkpoint(tmp_path/'new.pt')
    torch.testing.assert_close(loaded.decode(z), torch.sigmoid(loaded.decode(z, logits=True) / 2.5))


def test_the_default_loss_is_unchanged_by_the_new_arguments():
    "`vae_loss` without the RecVAE arguments is the loss of the specification (bit for bit)."
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(5, 7, generator=g), (torch.rand(5, 7, generator=g) < 0.3).float()
    mu, lv = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    kl = -0.5 * (1 + lv - mu.pow(2) - lv.exp())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction='sum') + 0.5 * kl.mean(0).clamp(min=0.2).sum() * 5
    assert torch.equal(vae_loss(logits, x, mu, lv, 0.5, free_bits=0.2)[0], expected)


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('opts')/'run'
    args = ['ebird-vae', 'train', '--preset', 'spec', '--out', out, '--epochs', 4, '--save-every', 1, *SMALL,
            '--recall-patience', 2, '--calibrate', '--kl-per-species', '--prior', 'composite']
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    return out, r


def test_the_command_line_options_reach_the_trainer(cli_run):
    "`ebird-vae train --recall-patience --calibrate --kl-per-species --prior composite`: recorded, applied, and the final model calibrated."
    out, r = cli_run
    ck = Checkpoint.load(out/'final_model.pt')
    assert {k: ck.config[k] for k in ('recall_patience', 'calibrate', 'kl_per_species', 'prior')} == \
           dict(recall_patience=2, calibrate=True, kl_per_species=True, prior='composite')
    assert 'Validation Recall@10' in r.stdout and 'Calibrated on the validation checklists: temperature' in r.stdout
    assert ck.model_state_dict['temperature'].item() != 1.0
    sel = ck.callbacks['RecallSelectionCB']
    for k, v in ck.model_state_dict.items():
        if k != 'temperature': assert torch.equal(v, sel['best_state'][k]), k   # the final model is the best epoch's


def test_resume_from_an_epoch_checkpoint_ends_with_the_same_model(cli_run, tmp_path):
    "A resumed run with the options ends with the same weights and temperature as the uninterrupted one."
    out, _ = cli_run
    again = tmp_path/'again'
    args = ['ebird-vae', 'train', '--preset', 'spec', '--out', again, '--epochs', 4, '--save-every', 1, *SMALL,
            '--recall-patience', 2, '--calibrate', '--kl-per-species', '--prior', 'composite', '--resume', out/'checkpoints'/'checkpoint_epoch_2.pt']
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    a, b = Checkpoint.load(out/'final_model.pt'), Checkpoint.load(again/'final_model.pt')
    for k, v in a.model_state_dict.items(): assert torch.equal(v, b.model_state_dict[k]), k
