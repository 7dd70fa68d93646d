"""Scale: time and peak memory of build, one training epoch, embedding and evaluation on generator files of growing size.

    nice -n 10 python benchmarks/bench_scale.py [--rows 1M,4M,16M] [--species 3000] [--sweep-species 1000,6000]
        [--sweep-rows 1M] [--stages build,train,build+train,embed,evaluate,dense] [--sweep-stages build,build+train]
        [--dense-max-gb 4] [--out benchmarks/results_scale.md] [--from-json]

Files: `ebird_vae.synthetic.write_ebd(path, n_rows=..., n_species=...)` (Kerala's species, then synthetic ones up to
`n_species`; see `nbs/00c_synthetic.ipynb`), written once and cached under benchmarks/data/ (gitignored), with the
CSR matrix the `build` stage made (`.npz`), which the later stages load so that each measures its own step.

Every stage runs in a fresh Python process (as `bench_data.py` does), so each peak resident set size (VmHWM of that process,
imports and the loaded matrix included) is that stage's alone; wall-clock and CPU time are measured inside the process around
the work only. The machine's load average is recorded before each stage (other people's work slows ours).
  build         `build_species_matrix(path)`: the sparse (CSR) matrix, full cleaning
  train         the CSR loaded, `split_train_val` (20% validation), `create_dataloaders` (batch 512), a default
                `VariationalAutoencoder(n_species)`, `train_variational_autoencoder(num_epochs=1)` on the CPU
  build+train   both in one process: the issue's target (peak under 3 GB on the 16M-row, 3,000-species file)
  embed         a default VAE's `ChecklistEmbedder.embed` of every checklist, fed 20,000 rows at a time made dense from the
                CSR (`embed` of a `SpeciesMatrix` makes the whole matrix dense: see results_scale.md)
  evaluate      `evaluate_model` on a fixed sample (20,000 training and 5,000 held-out checklists, dense; no probes, 20
                importance samples): its cost does not grow with the file, which is what the row shows
  dense         today's dense path, the comparison: `sm.matrix` (a dense DataFrame) into `split_train_val`, one epoch; run
                only where checklists x species fits (`--dense-max-gb`, default 4 GB of uint8)
  gpu           only where `torch.cuda.is_available()`: one epoch with the whole CSR on the device (`SpeciesDataset.to`)
                against the CPU, samples/s. Written for a lent GPU; not run on this machine (no GPU), so untested.
The fit: per stage, the growth exponent of time and peak (above the imports) between sizes, with rows, presences (non-zeros
of the matrix) and species; the projection applies the stated model (see `project`) to a national file and the whole EBD.
"""
import argparse, datetime, json, math, os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / 'data'
STAGES = ('build', 'train', 'build+train', 'embed', 'evaluate', 'dense')
BATCH, EMBED_BLOCK, EVAL_TRAIN, EVAL_TEST = 512, 20_000, 20_000, 5_000


def _peak_mb():
    "This process's own peak resident set size (VmHWM), in MB."
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]) / 1024


def _rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _n(text):
    "'16M' -> 16_000_000; '500k' -> 500_000; '3000' -> 3000."
    text = text.strip().lower(); mult = {'k': 1_000, 'm': 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip('km')) * mult)


def _label(n): return f'{n // 1_000_000}M' if n % 1_000_000 == 0 else f'{n // 1000}k' if n % 1000 == 0 else str(n)


def ebd_file(n_rows, n_species, chunk=5000):
    "The generator's file of about `n_rows` rows and `n_species` species, written once and cached under benchmarks/data/."
    DATA.mkdir(exist_ok=True)
    path = DATA / f'ebd_scale_{_label(n_rows)}_{n_species}sp.txt'
    done = path.with_suffix('.done')
    if path.exists() and done.exists(): return path
    from ebird_vae.synthetic import write_ebd
    print(f'writing {path.name} ...', flush=True)
    t = time.perf_counter()
    truth = write_ebd(path, n_rows=n_rows, seed=0, n_species=n_species, chunk_checklists=chunk)
    seconds = round(time.perf_counter() - t)
    with open(path, 'rb') as f: rows = sum(b.count(b'\n') for b in iter(lambda: f.read(1 << 24), b'')) - 1
    done.write_text(json.dumps(dict(rows=rows, outings=len(truth), seconds=seconds, bytes=path.stat().st_size)))
    return path


def _csr_path(path): return path.with_suffix('.csr.npz')


def _save_csr(sm, path):
    import scipy.sparse
    scipy.sparse.save_npz(_csr_path(path), sm.X, compressed=False)
    _csr_path(path).with_suffix('.species.json').write_text(json.dumps([str(s) for s in sm.species]))


def _load_csr(path):
    import scipy.sparse
    return scipy.sparse.load_npz(_csr_path(path)).tocsr(), json.loads(_csr_path(path).with_suffix('.species.json').read_text())


def _one_epoch(X, species, device='cpu'):
    "Split, loaders, a default VAE and one epoch of `train_variational_autoencoder`; returns the training checklists."
    import torch
    from ebird_vae.data import split_train_val, create_dataloaders
    from ebird_vae.models import VariationalAutoencoder
    from ebird_vae.training import train_variational_autoencoder
    torch.manual_seed(0)
    tr, va = split_train_val(X, species, val_size=0.2)
    if device != 'cpu': tr.to(device); va.to(device)
    tl, vl = create_dataloaders(tr, va, batch_size=BATCH)
    train_variational_autoencoder(VariationalAutoencoder(len(species)), tl, vl, num_epochs=1, device=device, progress=False, print_every=10**9)
    return len(tr)


def _sample_dense(X, n, rng):
    rows = rng.choice(X.shape[0], min(n, X.shape[0]), replace=False)
    return X[rows].toarray().astype('float32')


def stage(name, path):
    "Run one stage in this process; return its figures (the work alone is timed)."
    import numpy as np, torch
    from ebird_vae.data import build_species_matrix
    if name == 'imports':
        import ebird_vae.evaluation, ebird_vae.inference, ebird_vae.training  # noqa: F401
        return dict(peak_mb=round(_peak_mb()), threads=torch.get_num_threads())
    out, t0, cpu0 = {}, time.perf_counter(), time.process_time()
    if name in ('build', 'build+train', 'dense'):
        sm = build_species_matrix(path)
        X, species = sm.X, [str(s) for s in sm.species]
        out['build_s'] = round(time.perf_counter() - t0, 2)
    else:
        X, species = _load_csr(path)
        out['load_mb'] = round(_rss_mb())
    if name in ('train', 'build+train'): out['n_train'] = _one_epoch(X, species)
    if name == 'dense':
        dense = sm.matrix                                      # today's path: the whole checklists x species frame
        out['n_train'] = _one_epoch(dense, list(dense.columns))
    if name == 'embed':
        from ebird_vae.inference import ChecklistEmbedder
        from ebird_vae.models import VariationalAutoencoder
        torch.manual_seed(0)
        emb = ChecklistEmbedder(VariationalAutoencoder(len(species)), species)
        t0, cpu0 = time.perf_counter(), time.process_time()
        Z = [emb.embed(X[s:s + EMBED_BLOCK].toarray(), progress=False) for s in range(0, X.shape[0], EMBED_BLOCK)]
        out['embedded'] = sum(len(z) for z in Z)
    if name == 'evaluate':
        from ebird_vae.evaluation import evaluate_model
        from ebird_vae.models import VariationalAutoencoder
        torch.manual_seed(0); rng = np.random.default_rng(0)
        tr, te = _sample_dense(X, EVAL_TRAIN, rng), _sample_dense(X, EVAL_TEST, rng)
        t0, cpu0 = time.perf_counter(), time.process_time()
        evaluate_model(VariationalAutoencoder(len(species)), tr, te, iwae_samples=20, forest_trees=0, progress=False)
    if name == 'gpu': out.update(gpu_samples_per_s(X, species))
    out = dict(out, seconds=round(time.perf_counter() - t0, 2), cpu_seconds=round(time.process_time() - cpu0, 1),
               peak_mb=round(_peak_mb()), checklists=X.shape[0], species=X.shape[1], presences=int(X.nnz),
               threads=torch.get_num_threads())
    if name == 'build': _save_csr(sm, path)   # after the figures: the cache's write is not the build's
    return out


def gpu_samples_per_s(X, species) -> dict:
    "Training samples/s for one epoch with the whole CSR on the GPU against the CPU (only where CUDA is available; untested here)."
    import torch
    rates = {}
    for device in ('cuda', 'cpu'):
        if device == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        n = _one_epoch(X, species, device)
        if device == 'cuda': torch.cuda.synchronize()
        rates[f'{device}_samples_per_s'] = round(n / (time.perf_counter() - t))
    return rates


def run_stage(name, path, timeout=3600):
    "Figures of one stage from a fresh process (nice'd like its parent), or an error."
    load = os.getloadavg()[0]
    p = subprocess.run([sys.executable, __file__, '--child', name, str(path)], capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
    if p.returncode or not lines:
        return dict(stage=name, error=f"exit {p.returncode}: {(p.stderr.strip().splitlines() or ['(no output)'])[-1][:300]}", load=load)
    return dict(json.loads(lines[-1]), stage=name, load=round(load, 1))


def dense_fits(path, max_gb) -> bool:
    "Whether checklists x species as uint8 (from the cached CSR's shape) is at most `max_gb`."
    import scipy.sparse
    shape = scipy.sparse.load_npz(_csr_path(path)).shape
    return shape[0] * shape[1] / 1e9 <= max_gb


def growth(results, x_key, y_key, base=0.0):
    "Exponent k of y - base ~ x^k between the smallest and largest x of `results` (None with fewer than two)."
    pts = sorted((r[x_key], r[y_key] - base) for r in results if y_key in r and r.get(x_key))
    if len(pts) < 2 or pts[0][0] == pts[-1][0] or min(p[1] for p in pts) <= 0: return None
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    return math.log(y1 / y0) / math.log(x1 / x0)


def slope(results, x_key, y_key):
    "(intercept, slope) of the least-squares line y = a + b x over `results`."
    import numpy as np
    pts = np.array([(r[x_key], r[y_key]) for r in results if y_key in r])
    if len(pts) < 2 or np.ptp(pts[:, 0]) == 0: return None
    b, a = np.polyfit(pts[:, 0], pts[:, 1], 1)
    return a, b


NATIONAL = dict(name='national file (30M checklists)', checklists=30e6, species_per_checklist=15, species=2000, rows_per_checklist=17)
WHOLE_EBD = dict(name='whole EBD (~100M checklists)', checklists=100e6, species_per_checklist=15, species=11000, rows_per_checklist=17)


def project(by_stage, target) -> dict:
    """Projected CPU seconds (on this machine's threads) and peak GB for `target`, from straight lines fitted to the
    measured files: build time and peak linear in rows; one epoch's time (build+train less build, same file) and
    embedding time linear in checklists x species (every batch is made dense: B x species inputs through a
    species x 512 layer); the peaks of build+train and embedding linear in presences (the CSR: 5 bytes a presence)."""
    rows = target['checklists'] * target['rows_per_checklist']
    x = dict(rows=rows, presences=target['checklists'] * target['species_per_checklist'], cs=target['checklists'] * target['species'])
    build = {r['file']: r for r in by_stage.get('build', [])}
    cs = lambda r: dict(r, cs=r['checklists'] * r['species'])
    train = [dict(cs(r), cpu_seconds=r['cpu_seconds'] - build[r['file']]['cpu_seconds']) for r in by_stage.get('build+train', []) if r['file'] in build]
    embed = [cs(r) for r in by_stage.get('embed', [])]
    plan = dict(build_s=(list(build.values()), 'rows', 'cpu_seconds'), build_gb=(list(build.values()), 'rows', 'peak_mb'),
                epoch_s=(train, 'cs', 'cpu_seconds'), train_gb=(by_stage.get('build+train', []), 'presences', 'peak_mb'),
                embed_s=(embed, 'cs', 'cpu_seconds'), embed_gb=(embed, 'presences', 'peak_mb'))
    out = {}
    for key, (rs, xk, yk) in plan.items():
        fit = slope(rs, xk, yk)
        if fit: out[key] = (fit[0] + fit[1] * x[xk]) / (1024 if key.endswith('_gb') else 1)
    return out


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    mem = next((int(l.split()[1]) / 2**20 for l in open('/proc/meminfo') if l.startswith('MemTotal')), float('nan'))
    return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), cpu=cpu, cores=os.cpu_count(),
                memory_gb=round(mem, 1), python=platform.python_version(), nice=os.nice(0),
                load_average=' '.join(f'{x:.1f}' for x in os.getloadavg()))


def table(results) -> list:
    head = '| file | stage | checklists | species | presences | seconds | CPU s | peak MB | load | note |'
    lines = [head, '|' + '---|' * 10]
    for r in results:
        note = r.get('error') or ', '.join(f'{k}={r[k]}' for k in ('build_s', 'n_train', 'embedded', 'cuda_samples_per_s', 'cpu_samples_per_s') if k in r)
        lines.append(f"| {r['file']} | {r['stage']} | {r.get('checklists', '')} | {r.get('species', '')} | {r.get('presences', '')} | "
                     f"{r.get('seconds', '')} | {r.get('cpu_seconds', '')} | {r.get('peak_mb', '')} | {r.get('load', '')} | {note} |")
    return lines


def fit_lines(results, sweep, imports_mb) -> list:
    "Growth exponents (time, and peak above the smallest file's imports) per stage, with rows/presences and with species."
    lines = ['| stage | CPU time ~ rows^k | peak ~ presences^k | CPU time ~ species^k (fixed rows) | peak ~ species^k (fixed rows) |', '|---|---|---|---|---|']
    fmt = lambda k: '' if k is None else f'{k:.2f}'
    for name in STAGES:
        rs, ss = [r for r in results if r['stage'] == name and 'seconds' in r], [r for r in sweep if r['stage'] == name and 'seconds' in r]
        if not rs and not ss: continue
        base = imports_mb
        lines.append(f"| {name} | {fmt(growth(rs, 'rows', 'cpu_seconds'))} | {fmt(growth(rs, 'presences', 'peak_mb', base))} | "
                     f"{fmt(growth(ss, 'species', 'cpu_seconds'))} | {fmt(growth(ss, 'species', 'peak_mb', base))} |")
    return lines


def projection_lines(results) -> list:
    by_stage = {}
    for r in results:
        if 'seconds' in r: by_stage.setdefault(r['stage'], []).append(r)
    lines = ['| target | rows | checklists | species | presences | build CPU s | build GB | one epoch CPU s | build+1 epoch GB | embed CPU s | embed GB |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for t in (NATIONAL, WHOLE_EBD):
        p = project(by_stage, t)
        f = lambda k, d=0: '' if k not in p else f'{p[k]:,.{d}f}'
        lines.append(f"| {t['name']} | {t['checklists'] * t['rows_per_checklist']:,.0f} | {t['checklists']:,.0f} | {t['species']:,} | "
                     f"{t['checklists'] * t['species_per_checklist']:,.0f} | {f('build_s')} | {f('build_gb', 1)} | {f('epoch_s')} | "
                     f"{f('train_gb', 1)} | {f('embed_s')} | {f('embed_gb', 1)} |")
    return lines


def measure(n_rows, n_species, stages, dense_max_gb) -> list:
    "Each stage on the file of (`n_rows`, `n_species`), build first (it caches the CSR the others load)."
    path, out = ebd_file(n_rows, n_species), []
    meta = json.loads(path.with_suffix('.done').read_text())
    for name in ['build'] + [s for s in stages if s != 'build']:
        if name == 'dense' and not dense_fits(path, dense_max_gb):
            out.append(dict(stage=name, error=f'not run: checklists x species over {dense_max_gb} GB as uint8')); continue
        r = run_stage(name, path)
        if name in stages or 'error' in r: out.append(r)
        print(json.dumps(r), flush=True)
        if name == 'build' and 'error' in r: break
    return [dict(r, file=path.name, rows=meta['rows'], target_rows=n_rows, file_mb=round(meta['bytes'] / 2**20)) for r in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', default='1M,4M,16M'); ap.add_argument('--species', type=int, default=3000)
    ap.add_argument('--sweep-species', default='1000,6000'); ap.add_argument('--sweep-rows', default='1M')
    ap.add_argument('--stages', default=','.join(STAGES)); ap.add_argument('--sweep-stages', default='build,build+train'); ap.add_argument('--dense-max-gb', type=float, default=4.0)
    ap.add_argument('--out', default=str(HERE / 'results_scale.md'))
    ap.add_argument('--child', nargs=2, metavar=('STAGE', 'PATH'), help=argparse.SUPPRESS)
    ap.add_argument('--from-json', action='store_true', help="rewrite the tables from --out's .json, measuring nothing")
    ap.add_argument('--add', action='store_true', help="keep --out's .json results for other row counts and add these (same machine)")
    a = ap.parse_args()
    if a.from_json:
        got = json.loads(Path(a.out).with_suffix('.json').read_text())
        write(a, got['machine'], got['results'], got['sweep'], got.get('command')); return
    if a.child:
        print(json.dumps(stage(a.child[0], Path(a.child[1])))); return
    stages = [s for s in a.stages.split(',') if s] + (['gpu'] if _cuda() else [])
    m = machine(); print(json.dumps(m), flush=True)
    m['imports_peak_mb'] = run_stage('imports', '-').get('peak_mb', 0)
    sweep_rows = {_n(n) for n in a.sweep_rows.split(',') if n}
    results, more = _kept(a) if a.add else ([], [])
    for n in [n for n in a.rows.split(',') if n]:                      # the results are written after each file
        results += measure(_n(n), a.species, stages, a.dense_max_gb)
        write(a, m, results, more + [r for r in results if r['target_rows'] in sweep_rows])
    for s in [s for s in a.sweep_species.split(',') if s]:
        for n in sweep_rows:
            more += measure(n, int(s), [x for x in a.sweep_stages.split(',') if x], a.dense_max_gb)
            write(a, m, results, more + [r for r in results if r['target_rows'] in sweep_rows])


def _kept(a) -> tuple:
    "The earlier results of `--out`'s .json, less the row counts measured now."
    p = Path(a.out).with_suffix('.json')
    if not p.exists(): return [], []
    got, now = json.loads(p.read_text()), {_n(n) for n in a.rows.split(',') if n}
    a.earlier = got.get('command')
    return [r for r in got['results'] if r['target_rows'] not in now], [r for r in got['sweep'] if r not in got['results']]


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


MARK = '<!-- everything below is written by bench_scale.py -->'


def write(a, m, results, sweep, cmd=None):
    cmd = cmd or 'python benchmarks/bench_scale.py ' + ' '.join(sys.argv[1:])
    if getattr(a, 'earlier', None): cmd = f'{a.earlier}`, then `{cmd}'
    text = [f'# Scale benchmark (generated by `{cmd}`)', '', f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; "
            f"Python {m['python']}; nice {m['nice']}; load average at the start {m['load_average']}; {m['date']}; "
            f"a process that only imports the package peaks at {m['imports_peak_mb']} MB.", '',
            '## Measured', '', *table(results), '', '## Species at a fixed row count', '', *table([r for r in sweep if r not in results]), '',
            '## Growth', '', *fit_lines(results, sweep, m['imports_peak_mb']), '', '## Projection', '', *projection_lines(results), '']
    Path(a.out).with_suffix('.json').write_text(json.dumps(dict(command=cmd, machine=m, results=results, sweep=sweep), indent=1))
    out = Path(a.out)
    kept = out.read_text().split(MARK)[0] if out.exists() else ''   # the notes above the marker stay
    out.write_text(kept + MARK + '\n' + '\n'.join(text))
    print('\n'.join(text))


if __name__ == '__main__':
    main()
