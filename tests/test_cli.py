"The `ebird-vae` console command, run as a user runs it: as a subprocess of the installed script."
import json, subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from ebird_vae.synthetic import sample_path

def ebird_vae(*args, **kw):
    return subprocess.run(['ebird-vae', *map(str, args)], capture_output=True, text=True, timeout=600, **kw)

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

def test_help_lists_commands_and_options():
    r = ebird_vae('--help')
    assert r.returncode == 0 and all(c in r.stdout for c in ['train', 'embed', 'evaluate'])
    r = ebird_vae('train', '--help')
    assert r.returncode == 0
    for opt in ['--data', '--out', '--epochs', '--batch_size', '--learning_rate', '--noise_std', '--latent_dim',
                '--hidden_dim', '--min_species_observations', '--resume', '--seed']:
        assert opt in r.stdout, opt

def test_train_on_bundled_sample(trained):
    out, r = trained
    assert 'bundled synthetic sample' in r.stdout
    for name in ['final_model.pt', 'history.json', 'training_curves.png', 'species.txt', 'run.json',
                 'checkpoints/checkpoint_epoch_1.pt', 'checkpoints/checkpoint_epoch_2.pt']:
        assert (out/name).exists(), name
    assert len(json.loads((out/'history.json').read_text())['train_loss']) == 2
    meta = torch.load(out/'final_model.pt', weights_only=True)['metadata']
    assert meta['model_config']['hidden_dimension'] == 64
    assert len(meta['split']['val_ids']) == json.loads((out/'run.json').read_text())['n_val']

def test_resume_continues_the_run(trained, tmp_path):
    out, _ = trained
    copy = tmp_path/'run'
    subprocess.run(['cp', '-r', str(out), str(copy)], check=True)
    r = ebird_vae('train', '--out', copy, '--epochs', 3, '--hidden_dim', 64, '--progress', 'False',
                  '--resume', copy/'checkpoints'/'checkpoint_epoch_2.pt')
    assert r.returncode == 0, r.stderr
    assert 'Resuming after epoch 2' in r.stdout
    history = json.loads((copy/'history.json').read_text())
    assert len(history['train_loss']) == 3
    assert history['val_loss'][:2] == json.loads((out/'history.json').read_text())['val_loss']

def test_embed_and_evaluate(trained, tmp_path):
    out, _ = trained
    r = ebird_vae('embed', out/'final_model.pt', sample_path(), '--output', tmp_path/'emb.parquet')
    assert r.returncode == 0, r.stderr
    assert '100.00%' not in r.stdout + r.stderr   # no progress bar into captured output
    emb = pd.read_parquet(tmp_path/'emb.parquet')
    assert len(emb) > 1000 and sum(c.startswith('z') for c in emb.columns) == 16
    r = ebird_vae('evaluate', out/'final_model.pt', sample_path(), '--output_dir', tmp_path/'eval', '--iwae_samples', 5)
    assert r.returncode == 0, r.stderr
    assert '100.00%' not in r.stdout + r.stderr
    summary = (tmp_path/'eval'/'summary.md').read_text()
    assert 'recorded in the checkpoint' in summary
    for name in ['report.csv', 'latent_map.png', 'reliability.png', 'recall_at_k.png']: assert (tmp_path/'eval'/name).exists()

def test_bad_input_is_a_clear_error(tmp_path):
    r = ebird_vae('train', '--data', tmp_path/'missing.txt', '--out', tmp_path/'o')
    assert r.returncode == 1 and 'missing.txt' in r.stderr and 'Traceback' not in r.stderr
    csv = tmp_path/'observations.csv'
    csv.write_text('GLOBAL UNIQUE IDENTIFIER,CATEGORY,COMMON NAME\nURN:1,species,House Crow\n')
    r = ebird_vae('train', '--data', csv, '--out', tmp_path/'o')
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert 'tab' in r.stderr.lower(), r.stderr
    r = ebird_vae('fly')
    assert r.returncode == 2 and "unknown command 'fly'" in r.stderr
