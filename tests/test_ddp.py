"""Distributed training (issue 22, part 3): 2 CPU processes (gloo) under torchrun against one process.

Each test starts real processes on tiny synthetic data (tests/ddp_job.py) and takes well under a minute."""
import os, re, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]
JOB = str(ROOT/'tests'/'ddp_job.py')
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): ENV.pop(k, None)

def one_process(out, *args):
    "The job in one plain process."
    subprocess.run([sys.executable, JOB, '--out', str(out), *args], env=ENV, check=True, timeout=120, capture_output=True)

def torchrun(out, *args, log_dir=None):
    "The job in 2 processes under torchrun (each rank's output into `log_dir`/.../RANK/stdout.log and stderr.log)."
    logs = ['--log-dir', str(log_dir), '--redirects', '3'] if log_dir else []
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', *logs,
                           JOB, '--out', str(out), *args], env=ENV, timeout=120, capture_output=True, text=True)

def final(path):
    ck = torch.load(path, weights_only=False)
    return ck['model_state_dict'], ck['history'], ck['epoch']

def assert_same_model(a, b):
    (wa, ha, ea), (wb, hb, eb) = final(a), final(b)
    assert ea == eb and list(wa) == list(wb)
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")
    for k in ha: assert ha[k] == pytest.approx(hb[k], rel=1e-5), k

def rank_log(log_dir, rank, name):
    (found,) = Path(log_dir).glob(f'**/attempt_0/{rank}/{name}.log')
    return found.read_text()

def test_two_processes_train_as_one(tmp_path):
    "Same global batch (25; the last batch of 5 splits 2 + 3): same weights and history; rank 1 computes its share and writes nothing."
    one_process(tmp_path/'one', '--epochs', '3')
    r = torchrun(tmp_path/'two', '--epochs', '3', '--rank-dirs', log_dir=tmp_path/'logs')
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_model(tmp_path/'one'/'checkpoints'/'final_model.pt', tmp_path/'two'/'rank0'/'final_model.pt')
    assert not (tmp_path/'two'/'rank1').exists()                       # rank 1 wrote no checkpoint
    assert rank_log(tmp_path/'logs', 1, 'stdout') == ''                # ... and printed nothing
    assert 'Epoch 3/3' in rank_log(tmp_path/'logs', 0, 'stdout')
    rows = [int(re.search(r'rank \d: (\d+) training rows', rank_log(tmp_path/'logs', k, 'stderr')).group(1)) for k in (0, 1)]
    assert rows == [3 * 86, 3 * 94]   # 180 checklists an epoch: 7 batches of 25 split 12 + 13, the last of 5 split 2 + 3

def test_sigterm_to_torchrun_resumes(tmp_path):
    "SIGTERM to the launcher stops both processes after the same batch; rank 0 saves interrupted.pt; the resumed run finishes as one uninterrupted process."
    out, epochs = tmp_path/'two', '4'
    launcher = [sys.executable, '-c', 'import sys; from ebird_vae.training.distributed import launch; '
                'sys.exit(launch(2, sys.argv[1:], program=[sys.executable]))', JOB, '--out', str(out), '--epochs', epochs]
    with open(tmp_path/'err.txt', 'w') as err:
        p = subprocess.Popen(launcher + ['--sleep', '0.1'], env=ENV, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 60
        while not (out/'checkpoints'/'checkpoint_epoch_1.pt').exists() and p.poll() is None and time.monotonic() < deadline: time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 143
    stopped = torch.load(out/'checkpoints'/'interrupted.pt', weights_only=False)
    assert 1 <= stopped['epoch'] < 4 and not (out/'checkpoints'/'final_model.pt').exists()
    assert (tmp_path/'err.txt').read_text().count('Interrupted (SIGTERM)') == 1   # said once, by rank 0
    r = subprocess.run(launcher + ['--resume', str(out/'checkpoints'/'interrupted.pt')], env=ENV, timeout=120, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    one_process(tmp_path/'one', '--epochs', epochs)
    assert_same_model(tmp_path/'one'/'checkpoints'/'final_model.pt', out/'checkpoints'/'final_model.pt')
    one_process(tmp_path/'resumed_in_one', '--epochs', epochs, '--resume', str(out/'checkpoints'/'interrupted.pt'))   # any number of processes resumes
    assert_same_model(tmp_path/'one'/'checkpoints'/'final_model.pt', tmp_path/'resumed_in_one'/'checkpoints'/'final_model.pt')

def test_input_dropout_draws_as_one_process(tmp_path):
    "Input dropout's random mask is drawn for the whole global batch in each process: 2 processes still train as one."
    one_process(tmp_path/'one', '--epochs', '2', '--corruption', 'dropout')
    r = torchrun(tmp_path/'two', '--epochs', '2', '--corruption', 'dropout')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'rank 0: 172 training rows' in r.stderr and 'rank 1: 188 training rows' in r.stderr   # each its share, 2 epochs
    assert_same_model(tmp_path/'one'/'checkpoints'/'final_model.pt', tmp_path/'two'/'checkpoints'/'final_model.pt')

def test_early_stopping_stops_every_rank(tmp_path):
    "Every rank sees rank 0's validation losses, so all stop after the same epoch as one process does: no rank left waiting."
    args = ['--epochs', '12', '--lr', '0.03', '--patience', '1']
    one_process(tmp_path/'one', *args)
    r = torchrun(tmp_path/'two', *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('Early stopping after epoch 4') == 1   # said once, by rank 0
    assert_same_model(tmp_path/'one'/'checkpoints'/'final_model.pt', tmp_path/'two'/'checkpoints'/'final_model.pt')
    assert final(tmp_path/'two'/'checkpoints'/'final_model.pt')[2] == 4
