"""A tiny training run for tests/test_ddp.py: run it plainly (one process) or under torchrun (several).

Synthetic presence data (no eBird records); every rank passes the same arguments, as torchrun users do."""
import argparse, os, sys, time

import numpy as np

from ebird_vae.data import split_train_val, create_dataloaders
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import Callback, TrainingInterrupted, set_seed, train_variational_autoencoder

def checklists(n=240, n_species=30, seed=0):
    "Two habitats' worth of 0/1 checklists: species common in one, rare in the other."
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n_species) < n_species // 2, 0.6, 0.1)
    habitat = rng.random(n) < 0.5
    prob = np.where(habitat[:, None], p, p[::-1])
    return (rng.random((n, n_species)) < prob).astype(np.uint8), [f'species {i}' for i in range(n_species)]

class Slow(Callback):
    "Sleep after each batch, so that a signal lands in the middle of the run."
    def __init__(self, seconds): self.seconds = seconds
    def after_batch(self, t): time.sleep(self.seconds)

class Count(Callback):
    "Count the training checklists this process computed; say so on stderr at the end (rank 1's stdout stays empty)."
    order = 100
    def before_fit(self, t): self.n = 0
    def after_batch(self, t): self.n += len(t.xb) if t.training else 0
    def after_fit(self, t): print(f"rank {os.environ.get('RANK', '0')}: {self.n} training rows", file=sys.stderr)

def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--batch-size', type=int, default=25)
    p.add_argument('--resume', default=None)
    p.add_argument('--sleep', type=float, default=0.0)
    p.add_argument('--rank-dirs', action='store_true', help='checkpoints into OUT/rankN (to see which rank writes)')
    p.add_argument('--corruption', default='gaussian')
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--patience', type=int, default=None)
    a = p.parse_args(argv)
    set_seed(0)
    matrix, species = checklists()
    train_ds, val_ds = split_train_val(matrix, species, val_size=0.25, random_seed=0)
    train_loader, val_loader = create_dataloaders(train_ds, val_ds, batch_size=a.batch_size)
    model = VariationalAutoencoder(len(species), latent_dimension=4, hidden_dimension=32)
    ckpt = os.path.join(a.out, f"rank{os.environ.get('RANK', '0')}") if a.rank_dirs else os.path.join(a.out, 'checkpoints')
    try:
        train_variational_autoencoder(model, train_loader, val_loader, num_epochs=a.epochs, checkpoint_dir=ckpt, save_every=1,
                                      progress=False, resume=a.resume, learning_rate=a.lr, early_stopping_patience=a.patience, corruption=a.corruption, keep_best=True,
                                      callbacks=[Count()] + ([Slow(a.sleep)] if a.sleep else []), on_interrupt='raise')
    except TrainingInterrupted as e: sys.exit(e.exit_code)

if __name__ == '__main__': main()
