"""File-to-matrix: this package's reader and cleaner vs the naive pandas pipeline, time and peak memory.

    python benchmarks/bench_data.py [--rows 1000000] [--repeat 3] [--big] [--out benchmarks/results_data.md]

Every measurement runs in a fresh Python process, so each peak resident set size (VmHWM of that
process, imports included) belongs to one method only (not ru_maxrss: Linux carries that over from the parent
that forked the child, so it would report the parent's size when the parent is larger); wall-clock and CPU time are measured inside the
process around the file-to-matrix work only (imports excluded); runs of the methods are interleaved and
the median of `--repeat` runs is reported.

Methods, on the synthetic generator's file (`ebird_vae.synthetic.write_ebd`, cached under benchmarks/data/):
  package            `ebird_vae.ebd.build_species_matrix(path)` (re-exported by ebird_vae.data): a plain file parsed
                     in 16 MB byte ranges on a pool of threads, full auk-style cleaning (the default)
  package, no filters  the same with `apply_quality_filters=False` (rollup and group collapse still on)
  package, no checks  the full cleaning with the row checks of issue 12 (`FIELD_CHECKS`, `_misaligned`) switched off,
                     ids still dictionary-encoded: the difference to `package` is what the checks cost
  quick start        the Quick Start path `create_species_matrix(load_ebird_data(path))`, imported from `ebird_vae.data`
                     (so torch is imported too, and counts in the peak): typed columns, then the matrix from the DataFrame
  naive              `pd.read_csv(path, sep='\\t')` of all columns with default options, keep CATEGORY == 'species',
                     `pivot_table` checklist x common name (the pipeline the issue compares against)
  naive, QUOTE_NONE  the same with `quoting=csv.QUOTE_NONE`, run when the default read fails on the
                     file's unquoted `"` characters (which real EBD files have too)
`--floor` also times the parsing alone, nothing after it, to show how much of the package's time is the parser's:
  parse, package's columns  `pyarrow.csv.read_csv` of the columns the package reads (as raw bytes, on all cores)
  parse, one column  the same with one column: every byte is still tokenised (the tokeniser's floor)
  polars, package's columns  `polars.read_csv` of the same columns (only when polars is installed; not a dependency)
`--before REV` also runs `package` and `quick start` from the package as it was at git revision REV (its files, from
`git archive`, first on the children's PYTHONPATH), interleaved with the rest: the same machine, load and file.
`--big` also builds the matrix from a 10M-row file (about 3.4 GB) with the package only, to check the
peak stays under 2 GB; the naive pipeline is not run on it (it needs about 20 GB).
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / 'data'


def _peak_mb():
    "This process's own peak resident set size (VmHWM), in MB."
    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))
    return int(line.split()[1]) / 1024


def _rss_now_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def child(method, path):
    "Run one method in this (fresh) process and print a JSON line of its figures."
    if method == 'import-data':
        import ebird_vae.data  # noqa: F401  (its import cost is what is measured)
        print(json.dumps(dict(method=method, import_mb=_rss_now_mb())))
        return
    if method in FLOOR:
        parse = parse_only(method, path)   # (imports and the header read before the clock starts)
        imported, cpu, t = _rss_now_mb(), time.process_time(), time.perf_counter()
        shape = parse()
        seconds = time.perf_counter() - t
    elif method == 'quick-start':
        from ebird_vae.data import load_ebird_data, create_species_matrix   # as the Quick Start does (torch included)
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        matrix, species = create_species_matrix(load_ebird_data(path))
        seconds = time.perf_counter() - t
        shape = matrix.shape
    elif method.startswith('package'):
        from ebird_vae.ebd import build_species_matrix   # the torch-free module that ebird_vae.data re-exports
        if method == 'package-nochecks': _checks_off()
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        sm = build_species_matrix(path, apply_quality_filters=method != 'package-nofilter')
        seconds = time.perf_counter() - t
        shape = sm.matrix.shape
    else:
        import csv
        import pandas as pd
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        kw = dict(quoting=csv.QUOTE_NONE) if method == 'naive-quote-none' else {}
        df = pd.read_csv(path, sep='\t', **kw)
        d = df[df['CATEGORY'] == 'species'].assign(present=1)
        m = d.pivot_table(index='SAMPLING EVENT IDENTIFIER', columns='COMMON NAME', values='present', aggfunc='max', fill_value=0)
        seconds = time.perf_counter() - t
        shape = m.shape
    cpu = time.process_time() - cpu
    peak = _peak_mb()
    module = sys.modules['ebird_vae'].__file__ if 'ebird_vae' in sys.modules else None
    print(json.dumps(dict(method=method, seconds=seconds, cpu_seconds=cpu, peak_mb=peak, import_mb=imported, shape=list(shape), module=module)))


def _checks_off():
    "Switch the reader's row checks off (it still dictionary-encodes the ids, as the checks do), to measure what they cost."
    import numpy as np
    import ebird_vae.reader as reader   # (where the block reader looks the checks up)
    def encode_only(tbl):
        c = 'SAMPLING EVENT IDENTIFIER'
        return np.zeros(0, np.int64), {}, (reader._one_chunk(tbl[c]).dictionary_encode() if c in tbl.column_names else None)
    reader._misaligned = encode_only


FLOOR = ('parse-columns', 'parse-one', 'polars-columns')

def parse_only(method, path):
    "A function that parses the file's columns that `build_species_matrix` reads (or one of them), nothing else, and returns (rows, columns)."
    import pyarrow as pa, pyarrow.csv as pacsv
    from ebird_vae.ebd import find_ebd, normalise_column_names
    try: from ebird_vae.ebd.cleaning import _builder_columns   # (the data layer as a package)
    except ImportError: from ebird_vae.ebd import _builder_columns   # (a revision from before it, for --before)
    from ebird_vae.reader import _source_columns
    cmap = normalise_column_names(find_ebd(path)[2])
    cols = _source_columns(cmap, _builder_columns(cmap))   # the raw header cells the package reads
    if method == 'parse-one': cols = cols[:1]
    if method == 'polars-columns':
        import polars as pl
        return lambda: pl.read_csv(path, separator='\t', columns=cols, quote_char=None, infer_schema=False, encoding='utf8-lossy').shape
    return lambda: pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter='\t', quote_char=False, double_quote=False, escape_char=False),
                                  convert_options=pacsv.ConvertOptions(include_columns=cols, column_types={c: pa.binary() for c in cols})).shape

BEFORE = {}   # '@before' -> (revision, directory holding its package)

def run_child(method, path, timeout=3600):
    "Figures of one method from a fresh process, or an error string; a method ending in '@before' runs the package of `--before`."
    base, _, at = method.partition('@')
    env = dict(os.environ)
    if at: env['PYTHONPATH'] = os.pathsep.join([str(BEFORE[at][1])] + [p for p in [env.get('PYTHONPATH')] if p])
    p = subprocess.run([sys.executable, __file__, '--child', base, str(path)], capture_output=True, text=True, timeout=timeout, env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
    if p.returncode or not lines:
        err = (p.stderr.strip().splitlines() or ['(no output)'])[-1]
        return dict(method=method, error=f'exit {p.returncode}: {err[:300]}')
    r = dict(json.loads(lines[-1]), method=method)
    if at and not str(r.get('module', '')).startswith(str(BEFORE[at][1])):
        return dict(method=method, error=f"the child imported {r.get('module')}, not the package at {BEFORE[at][0]}")
    return r


def checkout(rev, where):
    "The files of git revision `rev` of this repository, unpacked under `where` (a directory to put on PYTHONPATH)."
    import io, tarfile
    data = subprocess.run(['git', '-C', str(HERE.parent), 'archive', rev, 'ebird_vae'], capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(data)).extractall(where, filter='data')
    return Path(where)


def ensure_file(n_rows):
    "The generator's EBD of about `n_rows` rows, written once and cached under benchmarks/data/."
    DATA.mkdir(exist_ok=True)
    name = f'ebd_synthetic_{n_rows // 1_000_000}M.txt' if n_rows % 1_000_000 == 0 else f'ebd_synthetic_{n_rows}.txt'
    path, done = DATA / name, DATA / (name + '.done')
    if path.exists() and done.exists(): return path
    from ebird_vae.synthetic import write_ebd
    print(f'writing {path} ({n_rows:,} rows) ...', flush=True)
    t = time.perf_counter()
    truth = write_ebd(path, n_rows=n_rows, seed=0)
    done.write_text(f'{len(truth)} outings, {time.perf_counter() - t:.0f} s\n')
    return path


def measure(method, path, repeat):
    return summarise([run_child(method, path) for _ in range(repeat)])


def summarise(runs):
    "Median time and CPU time, largest peak, of a method's runs."
    ok = [r for r in runs if 'error' not in r]
    if not ok: return runs[0]
    r = dict(ok[0])
    r['seconds'] = statistics.median(x['seconds'] for x in ok)
    r['seconds_all'] = [round(x['seconds'], 2) for x in ok]
    r['cpu_seconds'] = statistics.median(x['cpu_seconds'] for x in ok)
    r['peak_mb'] = max(x['peak_mb'] for x in ok)
    return r


def _cpu_all(runs): return [r['cpu_seconds'] for r in runs if 'error' not in r]


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    import numpy, pandas, pyarrow   # not torch: the parent stays small (and the children are measured alone anyway)
    from importlib.metadata import version
    mem = next((int(l.split()[1]) / 2**20 for l in open('/proc/meminfo') if l.startswith('MemTotal')), float('nan'))
    return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), cpu=cpu, cores=os.cpu_count(),
                usable_cores=len(os.sched_getaffinity(0)), memory_gb=round(mem, 1), python=platform.python_version(),
                pyarrow_threads=pyarrow.cpu_count(), numpy=numpy.__version__,
                pandas=pandas.__version__, pyarrow=pyarrow.__version__, torch=version('torch'),
                load_average=' '.join(f'{x:.1f}' for x in os.getloadavg()))


LABELS = {'package': 'ebird_vae `build_species_matrix` (full cleaning)', 'package-nofilter': 'ebird_vae, `apply_quality_filters=False`',
          'package-nochecks': 'ebird_vae, full cleaning, row checks off', 'quick-start': 'Quick Start: `create_species_matrix(load_ebird_data(path))`',
          'naive': 'naive: `read_csv` (defaults) + `pivot_table`', 'naive-quote-none': 'naive with `quoting=QUOTE_NONE`',
          'parse-columns': "parsing only: pyarrow, the package's columns", 'parse-one': 'parsing only: pyarrow, one column',
          'polars-columns': "parsing only: polars, the package's columns"}


def method_label(method):
    base, _, at = method.partition('@')
    return LABELS[base] + (f', at {BEFORE[at][0]}' if at else '')


def table(results, base):
    rows = ['| method | file | time (s) | CPU time (s) | peak RSS (MB) | after imports (MB) | matrix | vs naive: time | vs naive: CPU | vs naive: peak memory |',
            '|---|---|---:|---:|---:|---:|---|---:|---:|---:|']
    for r in results:
        if 'error' in r:
            rows.append(f"| {method_label(r['method'])} | {r['file']} | failed: {r['error']} | | | | | | | |")
            continue
        other = base and r is not base and r['file'] == base['file']
        sp = f"{base['seconds'] / r['seconds']:.1f}x faster" if other else ''
        cp = f"{base['cpu_seconds'] / r['cpu_seconds']:.1f}x less" if other else ''
        mem = f"{r['peak_mb'] / base['peak_mb']:.2f} of it" if other else ''
        shape = (f"{r['shape'][0]:,} rows x {r['shape'][1]:,} column{'s' if r['shape'][1] > 1 else ''}, no matrix" if r['method'] in FLOOR
                 else f"{r['shape'][0]:,} x {r['shape'][1]:,}")
        rows.append(f"| {method_label(r['method'])} | {r['file']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['peak_mb']:,.0f} | {r['import_mb']:,.0f} | "
                    f"{shape} | {sp} | {cp} | {mem} |")
    return '\n'.join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--child', nargs=2, metavar=('METHOD', 'PATH'), help=argparse.SUPPRESS)
    ap.add_argument('--rows', type=int, default=1_000_000, help='rows of the benchmark file')
    ap.add_argument('--repeat', type=int, default=3, help='runs per method, interleaved (median time, max peak)')
    ap.add_argument('--floor', action='store_true', help="also time parsing alone (pyarrow; polars if installed): the parser's floor")
    ap.add_argument('--big', action='store_true', help='also build a 10M-row (~3.4 GB) file with the package (peak < 2 GB?)')
    ap.add_argument('--before', metavar='REV', help='also run the builder and the Quick Start of the package at this git revision')
    ap.add_argument('--out', default=str(HERE / 'results_data.md'), help='markdown file to write')
    a = ap.parse_args()
    if a.child: return child(*a.child)
    info = machine()
    path = ensure_file(a.rows)
    size = path.stat().st_size / 2**20
    methods = ['naive', 'package', 'package-nofilter', 'package-nochecks', 'quick-start']
    if a.before:
        import tempfile
        rev = subprocess.run(['git', '-C', str(HERE), 'rev-parse', '--short', a.before], capture_output=True, text=True, check=True).stdout.strip()
        BEFORE['before'] = (rev, checkout(rev, tempfile.mkdtemp(prefix='ebird_vae_before_')))
        methods += ['package@before', 'quick-start@before']
    if a.floor:
        methods += ['parse-columns', 'parse-one']
        try: import polars  # noqa: F401
        except ImportError: print('polars is not installed: its row is skipped', flush=True)
        else: methods.append('polars-columns')
    runs = {m: [] for m in methods}
    for r in range(a.repeat):                # interleaved, so that every method meets the same machine load
        for m in methods:
            print(f'run {r + 1}/{a.repeat}: {m} ...', flush=True)
            runs[m].append(run_child(m, path))
        if r == 0 and 'error' in runs['naive'][0]:
            print('naive read failed; measuring it with quoting=QUOTE_NONE as the baseline', flush=True)
            methods.insert(1, 'naive-quote-none'); runs['naive-quote-none'] = [run_child('naive-quote-none', path)]
    label = f'{a.rows / 1e6:g}M rows, {size:,.0f} MB'
    results = [dict(summarise(runs[m]), file=label) for m in methods]
    base = next((r for r in results if r['method'].startswith('naive') and 'error' not in r), None)
    if a.big:
        big = ensure_file(10_000_000)
        print('package on the 10M-row file ...', flush=True)
        results.append(dict(measure('package', big, 1), file=f'10M rows, {big.stat().st_size / 2**20:,.0f} MB'))
    info['load_average_end'] = ' '.join(f'{x:.1f}' for x in os.getloadavg())
    torch_mb = run_child('import-data', path).get('import_mb', float('nan'))
    md = ["# File-to-matrix benchmark\n",
          f"`python benchmarks/bench_data.py --rows {a.rows} --repeat {a.repeat}{' --floor' if a.floor else ''}{' --big' if a.big else ''}{f' --before {a.before}' if a.before else ''}`, {info['date']} UTC.\n",
          f"Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), {info['memory_gb']} GB RAM; "
          f"Python {info['python']}, numpy {info['numpy']}, pandas {info['pandas']}, pyarrow {info['pyarrow']}, torch {info['torch']} "
          f"(pyarrow cpu_count {info['pyarrow_threads']}). "
          f"Load average {info['load_average']} at the start, {info['load_average_end']} at the end "
          f"(other jobs shared the machine when it is above the core count).\n",
          "Each figure comes from a fresh process: time (wall clock) and CPU time are medians over the runs and cover the "
          "file-to-matrix work only (imports excluded); peak RSS is the process's own maximum resident set size (VmHWM), imports included. "
          "The package runs `ebird_vae.ebd.build_species_matrix`, which `ebird_vae.data` re-exports: `ebird_vae.ebd` does not "
          f"import torch (a process that imports `ebird_vae.data`, and so torch, starts at {torch_mb:,.0f} MB instead; the Quick Start "
          "row imports `ebird_vae.data`, so its peak includes torch).\n",
          table(results, base), '']
    if base:
        pk = next((r for r in results if r['method'] == 'package' and 'error' not in r), None)
        if pk:
            md.append(f"Targets (issue 3), full cleaning vs naive: at least 5x faster: {base['seconds'] / pk['seconds']:.1f}x in wall-clock "
                      f"time, {base['cpu_seconds'] / pk['cpu_seconds']:.1f}x in CPU time; at most 1/4 of the peak memory: "
                      f"{pk['peak_mb'] / base['peak_mb']:.2f}. The package parses a plain file in byte ranges (16 MB) on a pool of "
                      f"threads, one per usable core (at most 4), which also do the per-block half of the reduction; its CPU time is therefore "
                      f"larger than its wall-clock time, and the CPU-time ratio is the one that does not depend on the core "
                      f"count. The naive pipeline runs mostly in one thread. When the load average exceeds the core count, "
                      f"wall-clock times depend on what else runs.\n\nEvery run (s): naive {base.get('seconds_all')}, package "
                      f"{pk.get('seconds_all')}.")
            pairs = [n / k for n, k in zip(base.get('seconds_all', []), pk.get('seconds_all', []))]
            if len(pairs) > 1:
                md.append(f"Naive over package, run by run (each pair ran back to back): {min(pairs):.1f}x to {max(pairs):.1f}x, "
                          f"{sum(x >= 5 for x in pairs)} of {len(pairs)} runs at 5x or more.")
            nc = next((r for r in results if r['method'] == 'package-nochecks' and 'error' not in r), None)
            if nc:
                cpu_pairs = [(k - n) / k for k, n in zip(_cpu_all(runs['package']), _cpu_all(runs['package-nochecks']))]
                md.append(f"\nThe row checks (issue 12: at most 10% of the builder's time): the full cleaning takes {pk['cpu_seconds']:.2f} s of CPU "
                          f"with them and {nc['cpu_seconds']:.2f} s without (medians), {100 * (pk['cpu_seconds'] - nc['cpu_seconds']) / pk['cpu_seconds']:.0f}% "
                          f"of its CPU time; {pk['seconds']:.2f} s and {nc['seconds']:.2f} s of wall-clock time. Run by run (CPU, each pair back to back): "
                          f"{', '.join(f'{100 * x:.0f}%' for x in cpu_pairs)}.")
            qs = next((r for r in results if r['method'] == 'quick-start' and 'error' not in r), None)
            if qs:
                md.append(f"\nThe Quick Start path (issue 12: at least 3x faster than naive, at most 1/3 of its peak memory, torch import "
                          f"included): {base['seconds'] / qs['seconds']:.1f}x faster in wall-clock time ({base['cpu_seconds'] / qs['cpu_seconds']:.1f}x in CPU time), "
                          f"{qs['peak_mb'] / base['peak_mb']:.2f} of the peak memory ({qs['peak_mb']:,.0f} MB against {base['peak_mb']:,.0f} MB). "
                          f"Every run (s): {qs.get('seconds_all')}.")
            for m, now in (('package@before', pk), ('quick-start@before', qs)):
                old = next((r for r in results if r['method'] == m and 'error' not in r), None)
                if old and now:
                    pairs = [o / n for o, n in zip(old['seconds_all'], now['seconds_all'])]
                    md.append(f"\n{method_label(now['method'])}, now and at {BEFORE['before'][0]}: {now['seconds']:.2f} s and {old['seconds']:.2f} s "
                              f"(medians; {now['cpu_seconds']:.2f} s and {old['cpu_seconds']:.2f} s of CPU), peak {now['peak_mb']:,.0f} MB and "
                              f"{old['peak_mb']:,.0f} MB. Then over now, run by run (each pair in the same round): {', '.join(f'{x:.2f}' for x in pairs)}.")
            pc_ = next((r for r in results if r['method'] == 'parse-columns' and 'error' not in r), None)
            p1 = next((r for r in results if r['method'] == 'parse-one' and 'error' not in r), None)
            if pc_ and p1:
                md.append(f"\nWhere the package's time goes: parsing alone, the {pc_['shape'][1]} columns it reads and nothing after "
                          f"(no cleaning, no matrix), takes {pc_['seconds']:.2f} s ({base['seconds'] / pc_['seconds']:.1f}x faster than naive) "
                          f"and {pc_['cpu_seconds']:.2f} s of CPU; one column, which still tokenises every byte, {p1['seconds']:.2f} s "
                          f"({base['seconds'] / p1['seconds']:.1f}x). The package takes {pk['seconds'] - pc_['seconds']:.2f} s more than this parse "
                          f"(its cleaning and reduction, and its own threading: at most 4 parse threads that also do part of the reduction, "
                          f"where this parse uses pyarrow's pool on every core). Every run (s): parse {pc_.get('seconds_all')}, "
                          f"one column {p1.get('seconds_all')}.")
    bigr = [r for r in results if r['file'].startswith('10M')]
    if bigr and 'error' not in bigr[0]:
        b = bigr[0]
        disk = (' The wall-clock time is well above the CPU time: the file was read from disk, not from the page cache.'
                if b['seconds'] > 1.5 * b['cpu_seconds'] else '')
        md.append(f"\n10M rows: peak {b['peak_mb']:,.0f} MB (target < 2,048 MB) in {b['seconds']:.0f} s ({b['cpu_seconds']:.0f} s of CPU).{disk}")
    text = '\n'.join(md) + '\n'
    print(text)
    Path(a.out).write_text(text)
    print(json.dumps(results, indent=1), file=sys.stderr)


if __name__ == '__main__':
    main()
