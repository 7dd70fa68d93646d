"""Training throughput: this package's trainer vs the specification-era loop vs the machine's matmul limit.

    python benchmarks/bench_train.py [--epochs 3] [--n 20000] [--threads N] [--repeat 3] [--out benchmarks/results_train.md]
    python benchmarks/bench_train.py --main-job [--epochs 5] [--threads N] [--repeat 2]

With --main-job: the job `ebird-vae train` runs (the trainer with the default preset's callbacks: input dropout, beta,
free bits, per-epoch validation, checkpoint folder, final model, keep_last=2) on the bundled sample, side by side with a
bare PyTorch loop of the same model, data, batch size, corruption and epochs, in the same process with the same threads,
interleaved; the steps between them (validation, the trainer without files, the progress bar) say where the extra time
goes. It rewrites only the "main job" section of --out.

Throughput mode:

(a) `train_variational_autoencoder` fed by `create_dataloaders` (whole-batch indexing of one uint8 tensor,
    fused Adam, loss from logits, losses kept on the device);
(b) the plain loop of the specification's era: a per-item Dataset and a default DataLoader, a model with sigmoid
    outputs, `F.binary_cross_entropy`, the default Adam, and three `.item()` calls per batch;
(c) the machine's limit: float32 FLOP/s of a large matmul, turned into samples/s with 6 x parameters FLOPs per
    sample (forward + backward).
Also (a') the same trainer with `mixed_precision=True` (bfloat16 autocast, opt-in), set against the same float32 limit,
with the bfloat16 matmul rate printed beside it.
Same data (random checklists with community structure, 470 species), same model (470, 16, 512), batch 128.
On a GPU the same script also reports the figures with the whole matrix on the device.
"""
import argparse, os, statistics, sys, time, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ebird_vae.data import split_train_val, create_dataloaders
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import train_variational_autoencoder, set_seed, count_parameters
from bench_data import machine

N_SPECIES, LATENT, HIDDEN, BATCH = 470, 16, 512, 128

def make_matrix(n, seed=0):
    "Random checklists from 8 communities, ~12 species each on average."
    rng = np.random.default_rng(seed)
    prevalence = rng.beta(0.3, 12, size=(8, N_SPECIES))
    community = rng.integers(0, 8, n)
    x = (rng.random((n, N_SPECIES)) < prevalence[community]).astype(np.uint8)
    return pd.DataFrame(x, index=[f'S{i}' for i in range(n)], columns=[f'species {j}' for j in range(N_SPECIES)])

def bench_package(matrix, epochs, device, **kw):
    species = list(matrix.columns)
    train_ds, val_ds = split_train_val(matrix, species, val_size=BATCH, random_seed=0)
    train_loader, val_loader = create_dataloaders(train_ds, val_ds, batch_size=BATCH)
    set_seed(0)
    model = VariationalAutoencoder(N_SPECIES, LATENT, HIDDEN)
    train_variational_autoencoder(model, train_loader, val_loader, num_epochs=1, device=device, progress=False, print_every=10**6, **kw)  # warm-up
    start = time.perf_counter()
    train_variational_autoencoder(model, train_loader, val_loader, num_epochs=epochs, device=device, progress=False,
                                  print_every=10**6, resume=False, **kw)
    return len(train_ds) * epochs / (time.perf_counter() - start)

class PerItem(Dataset):
    def __init__(self, x): self.x = x
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return torch.FloatTensor(self.x[i])

class SigmoidVAE(VariationalAutoencoder):
    def forward(self, x):
        mu, lv = self.encode(x)
        return torch.sigmoid(self.decoder_network(self.reparameterize(mu, lv))), mu, lv

def plain_epoch(model, opt, train_loader, val_loader, device, noise_std=0.1):
    model.train()
    tl = tr = tk = 0.0
    for x in train_loader:
        x = x.to(device)
        noisy = torch.clamp(x + torch.randn_like(x) * noise_std, 0, 1)
        recon, mu, lv = model(noisy)
        rec = F.binary_cross_entropy(recon, x, reduction='sum')
        kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
        loss = rec + kl
        opt.zero_grad(); loss.backward(); opt.step()
        tl += loss.item(); tr += rec.item(); tk += kl.item()
    model.eval()
    with torch.no_grad():
        for x in val_loader:
            x = x.to(device); recon, mu, lv = model(x)
            rec = F.binary_cross_entropy(recon, x, reduction='sum'); kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
            (rec + kl).item(); rec.item(); kl.item()

def bench_plain(matrix, epochs, device):
    x = matrix.to_numpy(dtype=np.float32).copy()
    train, val = x[BATCH:], x[:BATCH]
    train_loader = DataLoader(PerItem(train), batch_size=BATCH, shuffle=True)
    val_loader = DataLoader(PerItem(val), batch_size=BATCH)
    set_seed(0)
    model = SigmoidVAE(N_SPECIES, LATENT, HIDDEN).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    plain_epoch(model, opt, train_loader, val_loader, device)  # warm-up
    start = time.perf_counter()
    for _ in range(epochs): plain_epoch(model, opt, train_loader, val_loader, device)
    return len(train) * epochs / (time.perf_counter() - start)

def matmul_flops(device, n=4096, reps=10, dtype=torch.float32):
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2): a @ b
    if device.type == 'cuda': torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps): c = a @ b
    if device.type == 'cuda': torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start)

def step_bounds(device, steps=200):
    "Milliseconds per batch of (GEMMs only, Adam only): the model's forward and backward matrix products replayed alone, and the trainer's optimizer step alone (float32)."
    set_seed(0)
    model = VariationalAutoencoder(N_SPECIES, LATENT, HIDDEN).to(device)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    x = {m: torch.randn(BATCH, m.in_features, device=device) for m in linears}
    dy = {m: torch.randn(BATCH, m.out_features, device=device) for m in linears}
    first = model.encoder_network[0]
    def gemms():   # per layer: forward x @ W^T + b, weight gradient dY^T @ x, input gradient dY @ W (not for the first layer)
        for m in linears:
            torch.addmm(m.bias, x[m], m.weight.t()); dy[m].t() @ x[m]
            if m is not first: dy[m] @ m.weight
    for p_ in model.parameters(): p_.grad = torch.randn_like(p_)
    from ebird_vae.training.trainer import _make_optimizer
    opt = _make_optimizer(model, 1e-3)
    out = []
    with torch.no_grad():
        for f in (gemms, opt.step):
            for _ in range(10): f()
            if device.type == 'cuda': torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps): f()
            if device.type == 'cuda': torch.cuda.synchronize()
            out.append((time.perf_counter() - start) / steps * 1e3)
    return tuple(out)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--n', type=int, default=20_000, help='checklists')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    p.add_argument('--repeat', type=int, default=3, help='interleaved repetitions; medians are reported')
    p.add_argument('--out', default='benchmarks/results_train.md')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    matrix = make_matrix(a.n)
    params = count_parameters(VariationalAutoencoder(N_SPECIES, LATENT, HIDDEN))[0]
    devices = [torch.device('cpu')] + ([torch.device('cuda')] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        runs = []
        for r in range(a.repeat):  # interleaved, so a drift in machine load hits every method alike
            flops = matmul_flops(dev)
            runs.append(dict(flops=flops, ours=bench_package(matrix, a.epochs, dev), plain=bench_plain(matrix, a.epochs, dev),
                             bf16=bench_package(matrix, a.epochs, dev, mixed_precision=True),
                             flops_bf16=matmul_flops(dev, dtype=torch.bfloat16)))
            runs[-1]['gemm_ms'], runs[-1]['adam_ms'] = step_bounds(dev)
            print(f"[{dev}] run {r + 1}: (a) {runs[-1]['ours']:,.0f} | (a') {runs[-1]['bf16']:,.0f} | (b) {runs[-1]['plain']:,.0f} | "
                  f"(c) {flops / (6 * params):,.0f} samples/s ({flops / 1e9:.1f} GFLOP/s; bfloat16 {runs[-1]['flops_bf16'] / 1e9:.1f})")
        med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        ours, plain, flops = med['ours'], med['plain'], med['flops']
        limit = flops / (6 * params)
        spread = {k: (min(run[k] for run in runs), max(run[k] for run in runs)) for k in runs[0]}
        rows.append(dict(device=f"{dev} ({torch.cuda.get_device_name(dev)})" if dev.type == 'cuda' else str(dev), ours=ours, plain=plain, limit=limit, flops=flops, spread=spread, bf16=med['bf16'],
                         flops_bf16=med['flops_bf16'], gemm_ms=med['gemm_ms'], adam_ms=med['adam_ms']))
        print(f"[{dev}] medians of {a.repeat}: (a) this trainer {ours:,.0f} samples/s | (b) spec-era loop {plain:,.0f} samples/s | "
              f"(c) matmul limit {limit:,.0f} samples/s ({flops / 1e9:.1f} GFLOP/s) | a/b = {ours / plain:.2f}x | a/c = {ours / limit:.0%} | "
              f"(a') mixed precision {med['bf16']:,.0f} samples/s: a'/b = {med['bf16'] / plain:.2f}x, a'/c = {med['bf16'] / limit:.0%}")
    cpu = machine()['cpu']
    load = os.getloadavg()
    lines = [f"# Training throughput", "",
             f"Measured {datetime.date.today()} with `python benchmarks/bench_train.py --epochs {a.epochs} --n {a.n} --repeat {a.repeat}`"
             f"{f' --threads {a.threads}' if a.threads else ''} on {os.cpu_count()} cores ({cpu}), torch {torch.__version__}, "
             f"{torch.get_num_threads()} torch threads. Model (470, 16, 512) = {params:,} parameters, batch {BATCH}, "
             f"{a.n:,} checklists. Load average at the end: {load[0]:.2f}.", "",
             "| device | (a) this trainer (float32, default), samples/s | (b) spec-era loop, samples/s | (c) float32 matmul limit, samples/s | float32 matmul GFLOP/s | a / b | a / c |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['device']} | {r['ours']:,.0f} | {r['plain']:,.0f} | {r['limit']:,.0f} | {r['flops'] / 1e9:.1f} | "
              f"{r['ours'] / r['plain']:.2f}x | {r['ours'] / r['limit']:.0%} |" for r in rows]
    lines += ["", "Opt-in mixed precision (`mixed_precision=True`: bfloat16 autocast, float32 weights, optimiser and loss), "
              "against the same float32 limit (c); the bfloat16 matmul rate is given for scale:", "",
              "| device | (a') this trainer, mixed precision, samples/s | a' / b | a' / c | bfloat16 matmul GFLOP/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['device']} | {r['bf16']:,.0f} | {r['bf16'] / r['plain']:.2f}x | {r['bf16'] / r['limit']:.0%} | "
              f"{r['flops_bf16'] / 1e9:.1f} |" for r in rows]
    lines += ["", f"Medians of {a.repeat} interleaved runs; ranges (min-max): " + "; ".join(
        f"{r['device']}: (a) {r['spread']['ours'][0]:,.0f}-{r['spread']['ours'][1]:,.0f}, "
        f"(a') {r['spread']['bf16'][0]:,.0f}-{r['spread']['bf16'][1]:,.0f}, "
        f"(b) {r['spread']['plain'][0]:,.0f}-{r['spread']['plain'][1]:,.0f}, "
        f"matmul {r['spread']['flops'][0] / 1e9:.0f}-{r['spread']['flops'][1] / 1e9:.0f} GFLOP/s" for r in rows) + "."]
    lines += ["", "Where a float32 step's time goes (medians of the same runs): the model's matrix products replayed alone "
              "(forward x @ W^T + b, weight and input gradients, the shapes autograd runs; 26 products per batch of 128) and the "
              "trainer's fused Adam step alone, against the trainer's time per batch. The last two columns are the most (a) could "
              "reach against (c) if everything else in a step (activations, loss, noise, autograd) took no time, and if Adam also took none:", "",
              "| device | trainer, ms per batch | matrix products alone, ms | Adam step alone, ms | rest, ms | a / c with only products + Adam | a / c with only products |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        step = BATCH / r['ours'] * 1e3
        ceiling = lambda ms: BATCH / (ms / 1e3) / r['limit']
        lines.append(f"| {r['device']} | {step:.2f} | {r['gemm_ms']:.2f} | {r['adam_ms']:.2f} | {step - r['gemm_ms'] - r['adam_ms']:.2f} | "
                     f"{ceiling(r['gemm_ms'] + r['adam_ms']):.0%} | {ceiling(r['gemm_ms']):.0%} |")
    lines += ["", "Targets on CPU: a/b >= 1.25x and a/c >= 70%."]
    old = Path(a.out).read_text() if Path(a.out).exists() else ''
    kept = MAIN_HEADING + old.split(MAIN_HEADING, 1)[1] if MAIN_HEADING in old else ''   # (the --main-job section stays)
    Path(a.out).write_text('\n'.join(lines) + '\n' + ('\n' + kept if kept else ''))
    print(f"wrote {a.out}")



MAIN_HEADING = '## The main job against a bare loop'

def sample_loaders(seed=42):
    "The bundled sample as `ebird-vae train` prepares it: cleaned, split (random, 20% validation, seed 42), batches of 128."
    from ebird_vae.synthetic import sample_path
    from ebird_vae.data import load_ebird_data, create_species_matrix
    matrix, species = create_species_matrix(load_ebird_data(sample_path()), min_species_observations=30)
    train_ds, val_ds = split_train_val(matrix, species, val_size=0.2, random_seed=seed)
    return species, *create_dataloaders(train_ds, val_ds, batch_size=BATCH)

def bare_loop(model, train_loader, val_loader, epochs, cfg, validate=False):
    "A bare PyTorch loop: input dropout, BCE from logits + beta x KL with free bits, Adam; optionally a validation pass per epoch."
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    for _ in range(epochs):
        model.train()
        for xb in train_loader:
            logits, mu, lv = model(xb * (torch.rand_like(xb) >= cfg.dropout_rate), logits=True)
            kl = -0.5 * (1 + lv - mu.pow(2) - lv.exp())
            loss = F.binary_cross_entropy_with_logits(logits, xb, reduction='sum') + cfg.beta * kl.mean(0).clamp(min=cfg.free_bits).sum() * len(xb)
            opt.zero_grad(); loss.backward(); opt.step()
        if validate:
            model.eval()
            with torch.no_grad():
                for xb in val_loader:
                    logits, mu, lv = model(xb, logits=True)
                    (F.binary_cross_entropy_with_logits(logits, xb, reduction='sum') - 0.5 * (1 + lv - mu.pow(2) - lv.exp()).sum()).item()

def main_job(model, train_loader, val_loader, epochs, cfg, files=True, bar=False):
    "`ebird-vae train`'s call of the trainer (files: its checkpoint folder and final model; bar: its terminal progress bar)."
    import contextlib, io, tempfile
    from ebird_vae.presets import trainer_options
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
        out = Path(d) if files else None
        train_variational_autoencoder(model, train_loader, val_loader, **trainer_options(cfg), progress=bar,
                                      checkpoint_dir=out/'checkpoints' if files else None,
                                      final_model=out/'final_model.pt' if files else None)

def main_vs_bare(epochs, repeat):
    "Seconds per run of each variant (medians of interleaved runs), with the load average of each run."
    from dataclasses import replace
    from ebird_vae.presets import preset, model_options
    from ebird_vae.cli import CLI_DEFAULTS
    species, train_loader, val_loader = sample_loaders()
    cfg = preset('recommended', epochs=epochs, **CLI_DEFAULTS)
    def variants(e):
        return {'bare': lambda m: bare_loop(m, train_loader, val_loader, e, cfg),
                'bare + validation': lambda m: bare_loop(m, train_loader, val_loader, e, cfg, validate=True),
                'trainer, no files': lambda m: main_job(m, train_loader, val_loader, e, replace(cfg, epochs=e), files=False),
                'main job': lambda m: main_job(m, train_loader, val_loader, e, replace(cfg, epochs=e)),
                'main job + progress bar': lambda m: main_job(m, train_loader, val_loader, e, replace(cfg, epochs=e), bar=True)}
    times, loads = {k: [] for k in variants(epochs)}, []
    for r in range(repeat + 1):   # round 0 (one epoch each) warms up and is not counted
        for name, run in variants(epochs if r else 1).items():
            set_seed(42)
            model = VariationalAutoencoder(len(species), **model_options(cfg))
            start = time.perf_counter(); run(model); took = time.perf_counter() - start
            if r: times[name].append(took)
            print(f"round {r}{' (warm-up, 1 epoch)' if not r else ''}: {name} {took:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
        if r: loads.append(os.getloadavg()[0])
    return {k: statistics.median(v) for k, v in times.items()}, {k: (min(v), max(v)) for k, v in times.items()}, loads, \
           (len(train_loader.dataset), len(val_loader.dataset), len(species))

def write_main_section(path, epochs, repeat, threads, med, spread, loads, sizes):
    "Replace the main-job section of `path` with these figures."
    cpu = machine()['cpu']
    bare = med['bare']
    lines = [MAIN_HEADING, "",
             f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/bench_train.py --main-job "
             f"--epochs {epochs} --repeat {repeat}{f' --threads {threads}' if threads else ''}` on {os.cpu_count()} cores ({cpu}), "
             f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), one process. The bundled sample: {sizes[0]:,} training "
             f"and {sizes[1]:,} validation checklists, {sizes[2]} species, batch {BATCH}, the recommended preset (input dropout, beta, "
             f"free bits) for {epochs} epochs. Load average after each round (this benchmark's own threads included): "
             f"{', '.join(f'{l:.2f}' for l in loads)} on 2 cores; medians of {repeat} interleaved rounds "
             f"after a warm-up round.", "",
             "| variant | seconds (median) | range | against the bare loop |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {spread[k][0]:.1f}-{spread[k][1]:.1f} | {v / bare:.2f}x |" for k, v in med.items()]
    text = Path(path).read_text() if Path(path).exists() else ''
    head = text.split(MAIN_HEADING)[0].rstrip()
    Path(path).write_text((head + '\n\n' if head else '') + '\n'.join(lines) + '\n')

def cli():
    if '--main-job' not in sys.argv: return main()
    p = argparse.ArgumentParser(description='The main job against a bare loop')
    p.add_argument('--main-job', action='store_true')
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--repeat', type=int, default=2)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--out', default='benchmarks/results_train.md')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    med, spread, loads, sizes = main_vs_bare(a.epochs, a.repeat)
    write_main_section(a.out, a.epochs, a.repeat, a.threads, med, spread, loads, sizes)
    print(f"wrote {a.out}")

if __name__ == '__main__': cli()
