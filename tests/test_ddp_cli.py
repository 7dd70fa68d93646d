"""`ebird-vae train --devices 2` (issue 22, part 3): the same run in two processes as in one, rank 1 quiet, and a resume."""
import os, subprocess, sys
from pathlib import Path

import torch


ROOT = Path(__file__).parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): ENV.pop(k, None)

def ebird_vae(*args):
    return subprocess.run([sys.executable, '-c', 'from ebird_vae.cli import main; main()', *args], env=ENV, timeout=180,
                          capture_output=True, text=True)

def test_train_devices_2_as_one_process(tmp_path):
    "Two processes train the bundled sample as one does; rank 1 neither fights rank 0 for OUT's lock nor prints; --resume continues."
    common = ['--epochs', '1', '--save-every', '1', '--nrows', '5000', '--device', 'cpu']
    one, two = ebird_vae('train', '--out', str(tmp_path/'one'), *common), ebird_vae('train', '--out', str(tmp_path/'two'), '--devices', '2', *common)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count('Epoch 1/1') == 1 and two.stdout.count('Reading') <= one.stdout.count('Reading')
    a, b = (torch.load(tmp_path/d/'final_model.pt', weights_only=False) for d in ('one', 'two'))
    for k in a['model_state_dict']: torch.testing.assert_close(a['model_state_dict'][k], b['model_state_dict'][k], rtol=1e-4, atol=1e-5)
    again = ebird_vae('train', '--out', str(tmp_path/'two'), '--devices', '2', *common[:1], '2', *common[2:], '--resume')
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.load(tmp_path/'two'/'final_model.pt', weights_only=False)['epoch'] == 2
