"""Runs and their files you can trust (issue 19): one checkpoint format, read back from today's and the previous
version's files, refused when damaged; explicit resumes that compare the run's options; options of `embed` and
`evaluate` checked before anything is read. Small models on the first rows of the bundled sample: seconds each."""
import io, json, os, subprocess, sys, tarfile
from pathlib import Path

import pytest
import torch

from ebird_vae.training import (FORMAT_VERSION, CheckpointError, load_checkpoint, model_from_checkpoint, read_checkpoint,
                                train_variational_autoencoder)

from test_cli import ENV, SMALL, in_process as run_cli   # (`ebird-vae ARGS` run by `main` in this process)

REPO = Path(__file__).resolve().parents[1]
BASE = '9cf6c30'   # the commit before TrainConfig and Checkpoint: its checkpoints are format 1

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A one-epoch `ebird-vae train` run of today's code (its final model is a format-2 checkpoint)."
    out = tmp_path_factory.mktemp('runs')/'run'
    r = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '1', '--save-every', '1', *map(str, SMALL)],
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    return out

@pytest.fixture(scope='module')
def base_run(tmp_path_factory):
    "A one-epoch run of the base commit's `ebird-vae train`, its package taken from git: checkpoints of the previous format."
    root = tmp_path_factory.mktemp('base')
    try: archive = subprocess.run(['git', '-C', str(REPO), 'archive', BASE, 'ebird_vae'], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): pytest.skip(f'the base commit {BASE} is not in this checkout')
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(root/'pkg')
    out = root/'run'
    code = f"from ebird_vae.cli import main; main({['train', '--out', str(out), '--epochs', '1', *map(str, SMALL)]!r})"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600,
                       env={**ENV, 'PYTHONPATH': str(root/'pkg')}, cwd=root)
    assert r.returncode == 0, r.stderr
    return out

def test_checkpoints_hold_the_run_and_a_format(run):
    from ebird_vae.training import Checkpoint
    ck = Checkpoint.load(run/'final_model.pt')
    assert ck.format_version == FORMAT_VERSION == 3 and ck.package_version
    assert ck.config['hidden_dim'] == 32 and ck.config['corruption'] == 'dropout'   # the recommended preset, as run
    assert ck.preprocessor['species'] == ck.species and ck.split['val_ids']
    assert sorted(read_checkpoint(run/'final_model.pt')) == sorted(['epoch', 'model_state_dict', 'optimizer_state_dict',
                                                                    'train_loss', 'val_loss', 'history', 'metadata'])

def test_a_checkpoint_of_the_previous_format_loads_embeds_and_resumes(base_run, capsys, tmp_path):
    from ebird_vae.training import Checkpoint
    ck = Checkpoint.load(base_run/'final_model.pt')
    assert ck.format_version == 1 and ck.config is None and ck.metadata['trainer']['corruption'] == 'dropout'
    assert model_from_checkpoint(ck).config['hidden_dimension'] == 32
    code, out, err = run_cli(capsys, 'embed', base_run/'final_model.pt', '--output', tmp_path/'e.csv')
    assert code == 0 and (tmp_path/'e.csv').exists(), err
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'more', '--epochs', 2, *SMALL, '--resume', base_run/'final_model.pt')
    assert code == 0 and 'Resuming after epoch 1' in out, err
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'other', '--epochs', 2, *SMALL, '--preset', 'spec',
                             '--resume', base_run/'final_model.pt')
    assert code == 1 and "the run's options differ (corruption='dropout' in the checkpoint, 'gaussian' here" in err, err

def test_a_checkpoint_with_changed_bytes_is_refused(run, tmp_path):
    "16 bytes flipped inside a weight tensor: torch reads the file without complaint, the digest does not match."
    raw = bytearray((run/'final_model.pt').read_bytes())
    w = torch.load(run/'final_model.pt', weights_only=True)['model_state_dict']['encoder_network.0.weight']
    at = raw.find(w.numpy().tobytes()[:64]) + 256
    raw[at:at + 16] = bytes(b ^ 0xFF for b in raw[at:at + 16])
    (tmp_path/'flipped.pt').write_bytes(bytes(raw))
    assert torch.load(tmp_path/'flipped.pt', weights_only=True)['epoch'] == 1
    with pytest.raises(CheckpointError, match='is damaged: its tensors do not match the SHA-256'): model_from_checkpoint(tmp_path/'flipped.pt')

def test_nan_weights_are_refused_not_embedded(run, capsys, tmp_path):
    ck = torch.load(run/'final_model.pt', weights_only=True)
    ck['model_state_dict']['latent_mean_layer.weight'][0, 0] = float('nan')
    ck['metadata'].pop('tensors_sha256', None)    # (a file whose digest is right for its NaN weights)
    torch.save(ck, tmp_path/'nan.pt')
    code, out, err = run_cli(capsys, 'embed', tmp_path/'nan.pt', '--output', tmp_path/'e.csv')
    assert code == 1 and 'NaN or infinite weights in 1 layer(s) (latent_mean_layer.weight)' in err and err.count('\n') == 1, err
    assert 'Embedded' not in out and not (tmp_path/'e.csv').exists()

@pytest.mark.parametrize('change, message', [
    (lambda ck: ck.pop('epoch'), "missing key(s) ['epoch']"),
    (lambda ck: ck.update(ema_state_dict={}), "unknown key(s) ['ema_state_dict']"),
    (lambda ck: ck['metadata']['model_config'].update(n_layers=3), "model_config with argument(s) ['n_layers']"),
    (lambda ck: ck['metadata'].update(format_version=4), 'checkpoint format 4, newer than this ebird_vae reads'),
], ids=['no epoch', 'unknown key', 'newer model_config', 'newer format'])
def test_keys_that_cannot_be_read_are_named(run, capsys, tmp_path, change, message):
    ck = torch.load(run/'final_model.pt', weights_only=True)
    change(ck)
    torch.save(ck, tmp_path/'odd.pt')
    with pytest.raises(CheckpointError, match=None) as e: read_checkpoint(tmp_path/'odd.pt')
    assert message in str(e.value)
    code, out, err = run_cli(capsys, 'embed', tmp_path/'odd.pt', '--output', tmp_path/'e.csv')
    assert code == 1 and message in err and 'Traceback' not in err

def test_foreign_weights_without_a_model_config_are_one_line(run, capsys, tmp_path):
    ck = torch.load(run/'final_model.pt', weights_only=True)
    ck['model_state_dict'] = {f'net.{k}': v for k, v in ck['model_state_dict'].items()}
    ck['metadata'].pop('model_config'); ck['metadata'].pop('tensors_sha256', None)
    torch.save(ck, tmp_path/'foreign.pt')
    code, out, err = run_cli(capsys, 'embed', tmp_path/'foreign.pt', '--output', tmp_path/'e.csv')
    assert code == 1 and 'saved from another model' in err and err.count('\n') == 1, err

def loaders(run, seed):
    "Loaders of the run's first rows split with `seed`, like the run's."
    from ebird_vae.data import EBirdPreprocessor, create_dataloaders, load_ebird_data, split_train_val
    from ebird_vae.ebd.sample import sample_path
    preprocessor = read_checkpoint(run/'final_model.pt')['metadata']['preprocessor']
    sm = EBirdPreprocessor.from_dict(preprocessor).transform(load_ebird_data(sample_path(), nrows=20000))
    return create_dataloaders(*split_train_val(sm, None, random_seed=seed), batch_size=128)

def test_a_load_does_not_arm_a_resume(run):
    "Fine-tuning a loaded model on another split is a new run from its weights, not a refused resume."
    model = model_from_checkpoint(run/'final_model.pt').train()
    opt = torch.optim.Adam(model.parameters())
    load_checkpoint(run/'final_model.pt', model, opt)
    tl, vl = loaders(run, seed=7)
    h = train_variational_autoencoder(model, tl, vl, num_epochs=1, progress=False)
    assert len(h['val_loss']) == 1
    with pytest.raises(ValueError, match='`resume` takes the path of a checkpoint'):
        train_variational_autoencoder(model, tl, vl, num_epochs=1, progress=False, resume=True)

def test_a_resume_with_other_options_is_refused_naming_them(run, capsys, tmp_path):
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'o', '--epochs', 3, *SMALL, '--preset', 'spec',
                             '--resume', run/'final_model.pt')
    assert code == 1 and "the run's options differ (corruption='dropout' in the checkpoint, 'gaussian' here" in err, err
    assert 'dropout_rate=0.3 in the checkpoint, 0.5 here' in err and 'beta=0.5 in the checkpoint, 1.0 here' in err
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'o2', '--epochs', 3, *SMALL, '--early-stopping-patience', 5,
                             '--resume', run/'final_model.pt')
    assert code == 0 and 'Resuming after epoch 1' in out, err   # more epochs and a patience may change

@pytest.mark.parametrize('args, message', [
    (['embed', 'missing.pt', '--device', 'tpu'], "Unknown device 'tpu': choose one of cpu, cuda, mps"),
    (['embed', 'missing.pt', '--batch-size', 0], '--batch-size must be a whole number >= 1, got 0'),
    (['embed', 'missing.pt', '--output', 'e.xlsx'], '--output must end in .parquet, .csv or .npz'),
    (['evaluate', 'missing.pt', '--ease-l2', -1], '--ease-l2 must be a number > 0'),
    (['evaluate', 'missing.pt', '--iwae-samples', -1], '--iwae-samples must be a whole number >= 1 (or 0 to skip the NLL), got -1'),
    (['evaluate', 'missing.pt', '--device', 'cuda:7'], 'cuda'),
    (['evaluate', 'missing.pt', '--split', 'blocks'], "--split must be one of random, locality, spatial, got 'blocks'"),
], ids=['embed device', 'embed batch', 'embed output', 'ease l2', 'iwae', 'evaluate device', 'evaluate split'])
def test_embed_and_evaluate_check_options_before_reading(capsys, tmp_path, monkeypatch, args, message):
    "Each option is checked before the checkpoint (here missing) or any data are read, with the allowed values."
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code == 1 and message in err and 'No checkpoint at' not in err and err.count('\n') == 1, err

# --- run folders that never lose or mix work ---------------------------------------------------------------------------

def files_under(folder:Path) -> dict:
    "Every file under `folder` (hidden ones too) -> its bytes."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}

def train_popen(out, *args):
    return subprocess.Popen(['ebird-vae', 'train', '--out', str(out), *map(str, args)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

def wait_for(p, prefix:str):
    for line in p.stdout:
        if line.startswith(prefix): return line
    raise AssertionError(f'no line starting {prefix!r}: {p.communicate()}')

def test_a_second_run_into_a_busy_out_fails_at_once(tmp_path):
    "Two runs into one --out: the second stops at once, naming the first; the folder holds the first run only."
    import signal
    out = tmp_path/'run'
    first = train_popen(out, '--epochs', 100000, *SMALL)
    try:
        wait_for(first, 'Epoch ')
        second = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '1', *map(str, SMALL)], capture_output=True,
                                text=True, timeout=120, env=ENV)
        assert second.returncode == 1 and f'is in use by another ebird-vae train (process {first.pid})' in second.stderr, second.stderr
        assert 'Reading' not in second.stdout
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 130, err
    done = json.loads((out/'run.json').read_text())['epochs_completed']
    assert len(json.loads((out/'history.json').read_text())['val_loss']) == done and not (out/'.lock').exists()

def test_a_killed_overwrite_keeps_the_previous_run_and_its_stale_lock_is_taken_over(run, tmp_path):
    "SIGKILL while --overwrite trains: the previous run's files are still on disk (set aside), and the next run goes on."
    out = tmp_path/'run'
    subprocess.run(['cp', '-a', str(run), str(out)], check=True)
    before = files_under(out)
    p = train_popen(out, '--epochs', 20, *SMALL, '--overwrite')
    wait_for(p, 'Training (')
    p.kill(); p.communicate(timeout=60)
    kept = {k.split('/', 1)[1] if k.startswith('.overwritten-') else k: v for k, v in files_under(out).items()}
    assert all(kept.get(k) == v for k, v in before.items()), sorted(kept)    # nothing of the previous run is lost
    assert (out/'.lock').read_text().strip() == str(p.pid)                    # (a kill leaves its lock behind)
    r = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '1', *map(str, SMALL), '--overwrite'],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0 and f'Taking over the lock of a run that is no longer running (process {p.pid})' in r.stdout, r.stderr

def killed_overwrite(run, out:Path) -> subprocess.Popen:
    "A copy of `run` in `out`, then `ebird-vae train --overwrite` into it killed (SIGKILL) before it saved a checkpoint."
    subprocess.run(['cp', '-a', str(run), str(out)], check=True)
    p = train_popen(out, '--epochs', 20, '--save-every', 1000, *SMALL, '--overwrite')
    wait_for(p, 'Training (')
    p.kill(); p.communicate(timeout=60)
    assert (out/f'.overwritten-{p.pid}'/'final_model.pt').is_file() and not (out/'final_model.pt').exists()
    return p

def test_the_run_after_a_killed_overwrite_puts_the_previous_run_back(run, tmp_path):
    "After a kill -9 of --overwrite, the next run into that --out restores the set-aside run: refused as any previous run, then resumed."
    out = tmp_path/'run'
    before = files_under(run)
    p = killed_overwrite(run, out)
    r = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '1', *map(str, SMALL)],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 1 and f'(process {p.pid}) was stopped before it saved an epoch: the ' in r.stdout, r.stdout + r.stderr
    assert 'holds a previous run' in r.stderr and 'Reading' not in r.stdout, r.stderr
    assert files_under(out) == before                                       # (the very files, in their places; no lock, no aside)
    r = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '2', *map(str, SMALL), '--resume'],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0 and 'Resuming after epoch 1' in r.stdout, r.stdout + r.stderr

def test_a_killed_overwrite_that_saved_files_too_is_named_not_mixed(run, tmp_path):
    "A set-aside run beside files of the run that set it aside: nothing is moved, the message says whose files are where."
    out = tmp_path/'run'
    p = killed_overwrite(run, out)
    (out/'checkpoints').mkdir(exist_ok=True)
    subprocess.run(['cp', str(run/'checkpoints'/'checkpoint_epoch_1.pt'), str(out/'checkpoints')], check=True)   # (as if it saved one)
    before = files_under(out)
    r = subprocess.run(['ebird-vae', 'train', '--out', str(out), '--epochs', '2', *map(str, SMALL), '--resume'],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 1 and f"(process {p.pid}: 1 files, e.g. checkpoints/checkpoint_epoch_1.pt) and the previous run" in r.stderr, r.stderr
    assert f"'{out}/.overwritten-{p.pid}'" in r.stderr and 'To keep the newer run, delete that folder' in r.stderr
    assert {k: v for k, v in files_under(out).items() if k != '.lock'} == {k: v for k, v in before.items() if k != '.lock'}

def test_a_failed_overwrite_puts_the_previous_run_back(run, capsys, tmp_path):
    "A new run that diverges in its first epoch (learning rate 1e6) leaves the previous run exactly as it was."
    out = tmp_path/'run'
    subprocess.run(['cp', '-a', str(run), str(out)], check=True)
    before = files_under(out)
    code, stdout, err = run_cli(capsys, 'train', '--out', out, '--epochs', 3, *SMALL, '--overwrite', '--learning-rate', 1e6)
    assert code == 1 and 'loss became' in err and "the previous run's files are back" in err, err
    assert files_under(out) == before

def test_keep_last_bounds_the_epoch_checkpoints(capsys, tmp_path):
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'two', '--epochs', 4, '--save-every', 1, *SMALL, '--keep-best')
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path/'two'/'checkpoints').iterdir()) == ['best_model.pt', 'checkpoint_epoch_3.pt',
                                                                                 'checkpoint_epoch_4.pt']
    code, out, err = run_cli(capsys, 'train', '--out', tmp_path/'all', '--epochs', 3, '--save-every', 1, *SMALL, '--keep-last', 0)
    assert code == 0 and len(list((tmp_path/'all'/'checkpoints').iterdir())) == 3, err

def test_outputs_are_not_private(run):
    "Files written through a temporary file keep the usual permissions (mkstemp's are 0600)."
    mode = lambda p: p.stat().st_mode & 0o777
    mask = os.umask(0); os.umask(mask)
    assert mode(run/'run.json') == mode(run/'final_model.pt') == 0o666 & ~mask

@pytest.fixture
def small_disk(tmp_path):
    "A 1 MB tmpfs (root only)."
    if os.geteuid() != 0: pytest.skip('mounting a tmpfs to fill needs root')
    mnt = tmp_path/'disk'; mnt.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mnt)], capture_output=True).returncode:
        pytest.skip('this machine does not allow mounting a tmpfs')
    yield mnt
    subprocess.run(['umount', str(mnt)], check=False)

def fill(folder:Path):
    "Fill the file system of `folder` to the last byte."
    with open(folder/'filler', 'wb', buffering=0) as f:
        try:
            while True: f.write(b'\0' * 4096)
        except OSError: pass

def test_a_full_disk_never_leaves_half_an_output(run, small_disk, capsys, tmp_path):
    "embed and evaluate on a full disk: the previous outputs stay whole and no temporary file is left."
    from ebird_vae.data import load_ebird_data, build_species_matrix
    from ebird_vae.ebd.sample import sample_path
    matrix = tmp_path/'m.csv'
    build_species_matrix(load_ebird_data(sample_path(), nrows=3000)).matrix.to_csv(matrix)
    code, out, err = run_cli(capsys, 'embed', run/'final_model.pt', matrix, '--output', small_disk/'e.csv')
    assert code == 0, err
    good = (small_disk/'e.csv').read_bytes()
    fill(small_disk)
    code, out, err = run_cli(capsys, 'embed', run/'final_model.pt', matrix, '--output', small_disk/'e.csv')
    assert code == 1 and 'No space left on device' in err and err.count('\n') == 1, err
    assert (small_disk/'e.csv').read_bytes() == good
    assert sorted(p.name for p in small_disk.iterdir()) == ['e.csv', 'filler']
