"""Training throughput in 1 process against N processes under torchrun (DDP, gloo on the CPU; NCCL with --device cuda).

    python benchmarks/bench_ddp.py [--checklists 20000] [--epochs 2] [--batch-size 512] [--processes 2] [--device cpu]

Runs `train_variational_autoencoder` on random presence data (470 species, model 470-512-16, the global batch
--batch-size) as (a) one plain process with every core's threads, (b) one process with 1 thread, (c) --processes
processes under torchrun, 1 thread each (torchrun's default); prints training samples/s of each (time of `fit` only,
after a first warm-up epoch, so start-up and data building are not counted). Each run starts this script again as
the worker (`--worker`)."""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

def worker(a):
    import numpy as np, torch
    from ebird_vae.data import split_train_val, create_dataloaders
    from ebird_vae.models import VariationalAutoencoder
    from ebird_vae.training import Callback, set_seed, train_variational_autoencoder
    class Clock(Callback):
        order = 100
        def after_epoch(self, t):
            if t.epoch == 1: self.start = time.perf_counter()   # (epoch 1: warm-up)
        def after_fit(self, t): self.seconds = time.perf_counter() - self.start
    set_seed(0)
    rng = np.random.default_rng(0)
    p = rng.beta(0.3, 3, 470)
    m = (rng.random((a.checklists, 470)) < p).astype(np.uint8)
    train_ds, val_ds = split_train_val(m, [f's{i}' for i in range(470)], val_size=0.1, random_seed=0)
    loaders = create_dataloaders(train_ds, val_ds, batch_size=a.batch_size)
    clock = Clock()
    train_variational_autoencoder(VariationalAutoencoder(470, 16, 512), *loaders, num_epochs=a.epochs + 1, device=a.device,
                                  progress=False, print_every=10**6, callbacks=[clock])
    if int(os.environ.get('RANK', '0')) == 0:
        print(json.dumps(dict(samples_per_s=len(train_ds) * a.epochs / clock.seconds, seconds=clock.seconds,
                              threads=torch.get_num_threads(), world=int(os.environ.get('WORLD_SIZE', '1')))))

def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith('{')][-1])

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--checklists', type=int, default=20000); p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=512); p.add_argument('--processes', type=int, default=2)
    p.add_argument('--device', default='cpu'); p.add_argument('--worker', action='store_true')
    a = p.parse_args()
    if a.worker: return worker(a)
    me = [__file__, '--worker', '--checklists', str(a.checklists), '--epochs', str(a.epochs), '--batch-size', str(a.batch_size), '--device', a.device]
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    rows = [('1 process, all threads', run([sys.executable, *me], env)),
            ('1 process, 1 thread', run([sys.executable, *me], dict(env, OMP_NUM_THREADS='1'))),
            (f'{a.processes} processes (torchrun), 1 thread each',
             run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', str(a.processes), *me], env))]
    print(f"{a.checklists:,} checklists x 470 species, model 470-512-16, global batch {a.batch_size}, {a.epochs} timed epochs, "
          f"{os.cpu_count()} cores, device {a.device}")
    for name, r in rows: print(f"  {name:<40} {r['samples_per_s']:>10,.0f} samples/s  ({r['threads']} thread(s) per process)")

if __name__ == '__main__': main()
