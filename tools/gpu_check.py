"""Smoke checks of training, resume, mixed precision, embedding and evaluation on a CUDA device.

    python tools/gpu_check.py [--device cuda] [--out DIR]

Prints what it measured; nothing here is part of the test suite (CI has no GPU). Exits non-zero if a step fails.
"""
import argparse, subprocess, sys, tempfile, time
from pathlib import Path

import torch

from ebird_vae.data import build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.synthetic import sample_path
from ebird_vae.training import set_seed, train_variational_autoencoder


def fit(train_dl, val_dl, n_species, epochs, device, **kw):
    set_seed(0)
    model = VariationalAutoencoder(n_species)
    t = time.perf_counter()
    hist = train_variational_autoencoder(model, train_dl, val_dl, num_epochs=epochs, device=device, progress=False,
                                         print_every=10**6, **kw)
    if device == 'cuda': torch.cuda.synchronize()
    return model, hist, time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=None, help='folder for its checkpoints and outputs (default: a new temporary folder)')
    p.add_argument('--device', default='cuda', help='cuda (the point); cpu only to try the script out')
    a = p.parse_args()
    dev = a.device
    out = Path(a.out or tempfile.mkdtemp(prefix='gpu_check_')); out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}")
    sm = build_species_matrix(sample_path())
    tr, va = split_train_val(sm, None, split='locality', random_seed=42)
    tl, vl = create_dataloaders(tr, va, batch_size=128)
    n = len(sm.species)
    m4, h4, s4 = fit(tl, vl, n, 4, dev, checkpoint_dir=out/'a', save_every=2)
    print(f"4 epochs on {dev} in {s4:.2f} s; train loss {h4['train_loss']}; data on {tl.dataset.data.device}")
    set_seed(0)
    m = VariationalAutoencoder(n)
    h22 = train_variational_autoencoder(m, tl, vl, num_epochs=4, device=dev, progress=False, print_every=10**6,
                                        resume=out/'a'/'checkpoint_epoch_2.pt')   # (resume is explicit: a load does not arm one)
    diff = max(abs(a - b) for k in h4 for a, b in zip(h4[k], h22[k]))
    wdiff = max((a.float() - b.float()).abs().max().item() for a, b in zip(m4.state_dict().values(), m.state_dict().values()))
    print(f"resume 2+2 vs 4 on {dev}: largest history difference {diff:.3g}, largest weight difference {wdiff:.3g}")
    _, h32, s32 = fit(tl, vl, n, 30, dev)
    _, h16, s16 = fit(tl, vl, n, 30, dev, mixed_precision=True)
    print(f"30 epochs: float32 {s32:.1f} s, val {h32['val_loss'][-1]:.3f}; mixed precision {s16:.1f} s, val {h16['val_loss'][-1]:.3f}")
    ck = out/'a'/'checkpoint_epoch_4.pt'
    cli = [sys.executable, '-c', 'from ebird_vae.cli import main; main()']
    for args in (['embed', str(ck), str(sample_path()), '--output', str(out/'emb.parquet'), '--device', dev],
                 ['evaluate', str(ck), str(sample_path()), '--output_dir', str(out/'eval'), '--device', dev, '--iwae_samples', '20']):
        t = time.perf_counter()
        r = subprocess.run(cli + args, capture_output=True, text=True)
        print(f"ebird-vae {args[0]} on {dev}: exit {r.returncode} in {time.perf_counter() - t:.1f} s; last lines:",
              *r.stdout.strip().splitlines()[-3:], r.stderr.strip()[-800:], sep='\n  ')
        if r.returncode: raise SystemExit(r.returncode)


if __name__ == '__main__': main()
