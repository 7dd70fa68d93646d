"""Active latent units of the default VAE on a larger synthetic file than the bundled sample.

    python benchmarks/active_units_large.py [--rows 1000000] [--epochs 20] [--seeds 0,1] [--out benchmarks/results_active_units.md]

Asks whether the few active units on the bundled sample (4,179 checklists) come from its size: builds the matrix from the
generator's file of `--rows` rows (made once under benchmarks/data/, as bench_data.py does), trains the default model with
the default trainer settings on a locality split, and counts units whose posterior mean varies (variance > 0.01) over the
held-out checklists.
"""
import argparse, datetime, os, time
from pathlib import Path

import torch

from ebird_vae.data import build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.evaluation import latent_diagnostics
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import set_seed, train_variational_autoencoder
from bench_data import ensure_file, machine


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=1_000_000)
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--seeds', default='0,1')
    p.add_argument('--out', default='benchmarks/results_active_units.md')
    a = p.parse_args()
    sm = build_species_matrix(ensure_file(a.rows))
    train_ds, val_ds = split_train_val(sm, None, split='locality', random_seed=42)
    train_dl, val_dl = create_dataloaders(train_ds, val_ds, batch_size=128)
    rows = []
    for seed in map(int, a.seeds.split(',')):
        set_seed(seed)
        model = VariationalAutoencoder(len(sm.species))
        start = time.perf_counter()
        hist = train_variational_autoencoder(model, train_dl, val_dl, num_epochs=a.epochs, progress=False, print_every=5)
        model.eval()
        with torch.no_grad(): mean, log_var = model.encode(val_ds.data.float())
        d = latent_diagnostics(mean.numpy(), log_var.numpy())
        rows.append(f"| {seed} | {time.perf_counter() - start:.0f} | {hist['val_loss'][-1]:.2f} | {hist['val_kl_loss'][-1]:.2f} | "
                    f"{int(d.active.sum())} | {', '.join(f'{v:.3f}' for v in sorted(d.mean_variance, reverse=True)[:6])} |")
        print(rows[-1], flush=True)
    md = [f"# Active units on a larger synthetic file", "",
          f"`python benchmarks/active_units_large.py --rows {a.rows} --epochs {a.epochs} --seeds {a.seeds}`, {datetime.date.today()}, "
          f"{machine()['cpu']}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads. Matrix {len(sm.matrix):,} checklists x {len(sm.species)} species "
          f"(default cleaning), locality split {len(train_ds):,} / {len(val_ds):,}; `VariationalAutoencoder(n_species)` with the trainer's "
          f"defaults (lr 1e-3, noise 0.1, beta 1).", "",
          "| seed | training (s) | val loss (nats) | val KL (nats) | active units (of 16) | largest variances of the posterior mean |",
          "|---|---:|---:|---:|---:|---|"] + rows
    Path(a.out).write_text('\n'.join(md) + '\n')
    print(f"wrote {a.out}")


if __name__ == '__main__': main()
