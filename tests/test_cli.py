"The `ebird-vae` console command, run as a user runs it: as a subprocess of the installed script."
import json, subprocess, sys
from pathlib import Path

import torch

def ebird_vae(*args, **kw):
    return subprocess.run(['ebird-vae', *map(str, args)], capture_output=True, text=True, timeout=600, **kw)

def test_help_lists_commands_and_options():
    r = ebird_vae('--help')
    assert r.returncode == 0 and 'train' in r.stdout
    r = ebird_vae('train', '--help')
    assert r.returncode == 0
    for opt in ['--data', '--out', '--epochs', '--batch_size', '--learning_rate', '--noise_std', '--latent_dim',
                '--hidden_dim', '--min_species_observations', '--resume', '--seed']:
        assert opt in r.stdout, opt

def test_train_on_bundled_sample(tmp_path):
    out = tmp_path/'run'
    r = ebird_vae('train', '--out', out, '--epochs', 2, '--save_every', 1, '--hidden_dim', 64, '--progress', 'False')
    assert r.returncode == 0, r.stderr
    assert 'bundled synthetic sample' in r.stdout
    for name in ['final_model.pt', 'history.json', 'training_curves.png', 'species.txt', 'run.json',
                 'checkpoints/checkpoint_epoch_1.pt', 'checkpoints/checkpoint_epoch_2.pt']:
        assert (out/name).exists(), name
    history = json.loads((out/'history.json').read_text())
    assert len(history['train_loss']) == 2
    ck = torch.load(out/'final_model.pt', weights_only=True)
    assert ck['metadata']['model_config']['hidden_dimension'] == 64
    # continue the same run to epoch 3 from its last checkpoint
    r = ebird_vae('train', '--out', out, '--epochs', 3, '--hidden_dim', 64, '--progress', 'False',
                  '--resume', out/'checkpoints'/'checkpoint_epoch_2.pt')
    assert r.returncode == 0, r.stderr
    assert 'Resuming after epoch 2' in r.stdout
    assert len(json.loads((out/'history.json').read_text())['train_loss']) == 3

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
