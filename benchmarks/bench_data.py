"""File-to-matrix: this package's reader and cleaner vs the naive pandas pipeline, time and peak memory.

    python benchmarks/bench_data.py [--rows 1000000] [--repeat 3] [--methods package,polars,duckdb] [--floor] [--big] [--out benchmarks/results_data.md]

Every measurement runs in a fresh Python process, so each peak resident set size (VmHWM of that
process, imports included) belongs to one method only (not ru_maxrss: Linux carries that over from the parent
that forked the child, so it would report the parent's size when the parent is larger); wall-clock and CPU time are measured inside the
process around the file-to-matrix work only (imports excluded); runs of the methods are interleaved and
the median of `--repeat` runs is reported. Each child also records the most threads its process had while it worked.

Methods, on the synthetic generator's file (`ebird_vae.synthetic.write_ebd`, cached under benchmarks/data/):
  package            `ebird_vae.ebd.build_species_matrix(path)` (re-exported by ebird_vae.data): a plain file parsed
                     in 16 MB byte ranges on a pool of threads, full auk-style cleaning (the default)
  package, no filters  the same with `apply_quality_filters=False` (rollup and group collapse still on)
  package, no checks  the full cleaning with the row checks of issue 12 (`FIELD_CHECKS`, the reader's `failed_rows`) switched off,
                     ids still dictionary-encoded: the difference to `package` is what the checks cost
  quick start        the Quick Start path `create_species_matrix(load_ebird_data(path))`, imported from `ebird_vae.data`
                     (so torch is imported too, and counts in the peak): typed columns, then the matrix from the DataFrame
  naive              `pd.read_csv(path, sep='\\t')` of all columns with default options, keep CATEGORY == 'species',
                     `pivot_table` checklist x common name (the pipeline the issue compares against)
  naive, QUOTE_NONE  the same with `quoting=csv.QUOTE_NONE`, run when the default read fails on the
                     file's unquoted `"` characters (which real EBD files have too)
Peers, what a user would write instead (run when their library is installed, skipped with a note when not; neither is a
dependency: `pip install -r benchmarks/requirements-peers.txt` in a venv of your own):
  polars             a polars lazy pipeline: `scan_csv` (tab, no quoting, all text), the filters of `build_species_matrix`'s
                     defaults (complete checklists, protocol Stationary/Traveling, duration <= 360 min, distance <= 10 km with a
                     Stationary count's missing distance as 0, observers <= 10, a missing value failing), auk's rollup to species
                     worked out on the distinct (category, scientific name, common name, order) rows, group checklists collapsed
                     (GROUP IDENTIFIER, else the checklist id), unique (checklist, species) pairs, a uint8 matrix (numpy)
  duckdb             the same in DuckDB SQL (`read_csv`, all text, no quoting), the matrix filled from the pairs' codes (numpy)
The peers do none of the package's checks of the file (values that break `FIELD_CHECKS`, rows of one checklist that
disagree, checklists that lost a row, impossible dates, effort or coordinates): on the generator's clean file these
change nothing, which the comparison shows. The first round saves the matrix of `package` and of each peer, and the script
checks that each peer's matrix equals the package's (the same checklist ids in the same order, the same column names in
the same order, the same values); a difference is printed, written to the results and makes the script exit with 1.
`--methods a,b,...` runs only those methods (e.g. `package,polars,duckdb`), so that a run on a shared machine stays short.
`--floor` also times the parsing alone, nothing after it, to show how much of the package's time is the parser's:
  parse, package's columns  `pyarrow.csv.read_csv` of the columns the package reads (as raw bytes, on all cores)
  parse, one column  the same with one column: every byte is still tokenised (the tokeniser's floor)
  polars, package's columns  `polars.read_csv` of the same columns (only when polars is installed; not a dependency)
`--before REV` also runs `package` and `quick start` from the package as it was at git revision REV (its files, from
`git archive`, first on the children's PYTHONPATH), interleaved with the rest: the same machine, load and file.
`--profile` also times the stages of `build_species_matrix` (the read, then each step after it) in two fresh processes, and
samples one run with py-spy when it is installed: thread time by thread, by package function and by the deepest package line.
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


class _ThreadCount:
    "The most threads this process has had since `start()`, sampled from /proc/self/status every 20 ms by a daemon thread (not counted)."
    def __init__(self): self.most, self.on = 0, False
    def now(self): return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('Threads:')) - self.on
    def start(self):
        import threading
        self.on = True
        threading.Thread(target=self._poll, daemon=True).start()
        return self
    def _poll(self):
        while self.on:
            self.most = max(self.most, self.now()); time.sleep(0.02)
    def stop(self):
        self.most = max(self.most, self.now()); self.on = False
        return self.most


def _save(save, ids, columns, X):
    "Write a matrix's checklist ids, column names and values to `save` (an .npz file), for `compare`."
    import numpy as np
    np.savez(save, ids=np.asarray([str(i) for i in ids], dtype=str), columns=np.asarray([str(c) for c in columns], dtype=str), X=np.asarray(X, np.uint8))


def _threads_of(method):
    "The thread count the method's library is set to use."
    if method in ('polars', 'polars-columns'):
        import polars as pl
        return f'polars pool {pl.thread_pool_size()}'
    if method == 'duckdb':
        import duckdb
        return 'duckdb threads ' + str(duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0])
    import pyarrow
    n = max(1, min(4, len(os.sched_getaffinity(0))))
    return f'{n} parse threads (one per usable core, at most 4), pyarrow pool {pyarrow.cpu_count()}' if method.startswith(('package', 'quick')) else f'pyarrow pool {pyarrow.cpu_count()}'


def child(method, path, save=None):
    "Run one method in this (fresh) process and print a JSON line of its figures; `save`: also write its matrix there (after measuring)."
    if method == 'stages':
        print(json.dumps(dict(stages(path), method=method, load=os.getloadavg()[0])))
        return
    if method == 'import-data':
        import ebird_vae.data  # noqa: F401  (its import cost is what is measured)
        print(json.dumps(dict(method=method, import_mb=_rss_now_mb())))
        return
    threads, out = _ThreadCount(), None
    if method in FLOOR:
        parse = parse_only(method, path)   # (imports and the header read before the clock starts)
        imported, cpu, t = _rss_now_mb(), time.process_time(), time.perf_counter()
        threads.start()
        shape = parse()
        seconds = time.perf_counter() - t
    elif method in PEERS:
        build = PEERS[method]
        __import__(method)                 # (polars or duckdb: imported before the clock starts, like the package)
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        threads.start()
        out = build(path)
        seconds = time.perf_counter() - t
        shape = out[2].shape
    elif method == 'quick-start':
        from ebird_vae.data import load_ebird_data, create_species_matrix   # as the Quick Start does (torch included)
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        threads.start()
        matrix, species = create_species_matrix(load_ebird_data(path))
        seconds = time.perf_counter() - t
        shape = matrix.shape
    elif method.startswith('package'):
        from ebird_vae.ebd import build_species_matrix   # the torch-free module that ebird_vae.data re-exports
        if method == 'package-nochecks': _checks_off()
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        threads.start()
        sm = build_species_matrix(path, apply_quality_filters=method != 'package-nofilter')
        seconds = time.perf_counter() - t
        shape = sm.matrix.shape
        out = sm.matrix.index, sm.matrix.columns, sm.matrix.to_numpy()
    else:
        import csv
        import pandas as pd
        imported = _rss_now_mb()
        cpu = time.process_time()
        t = time.perf_counter()
        threads.start()
        kw = dict(quoting=csv.QUOTE_NONE) if method == 'naive-quote-none' else {}
        df = pd.read_csv(path, sep='\t', **kw)
        d = df[df['CATEGORY'] == 'species'].assign(present=1)
        m = d.pivot_table(index='SAMPLING EVENT IDENTIFIER', columns='COMMON NAME', values='present', aggfunc='max', fill_value=0)
        seconds = time.perf_counter() - t
        shape = m.shape
    cpu = time.process_time() - cpu
    peak, most = _peak_mb(), threads.stop()
    module = sys.modules['ebird_vae'].__file__ if 'ebird_vae' in sys.modules else None
    if save and out is not None: _save(save, *out)
    print(json.dumps(dict(method=method, seconds=seconds, cpu_seconds=cpu, peak_mb=peak, import_mb=imported, shape=list(shape), module=module,
                          threads=most, threads_set=_threads_of(method), load=os.getloadavg()[0])))


def _checks_off():
    "Switch the reader's row checks off (it still dictionary-encodes the ids, as the checks do), to measure what they cost."
    import numpy as np
    import ebird_vae.reader as reader   # (where the block reader looks the checks up)
    checks = 'failed_rows' if hasattr(reader, 'failed_rows') else '_misaligned'   # (its name before the data layer had no private imports)
    one_chunk = getattr(reader, 'one_chunk', None) or reader._one_chunk
    def encode_only(tbl):
        c = 'SAMPLING EVENT IDENTIFIER'
        return np.zeros(0, np.int64), {}, (one_chunk(tbl[c]).dictionary_encode() if c in tbl.column_names else None)
    setattr(reader, checks, encode_only)


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


# Peers: what a user would write with polars or DuckDB, the same filters as `build_species_matrix`'s defaults.
_TRINOMIAL = r'^([A-Z][a-z-]+ [a-z-]+) [a-z-]+$'   # auk's rollup: a subspecies counts for its species
_BINOMIAL = r'^[A-Z][a-z-]+ [a-z-]+$'              # a domestic type counts only when it is a species
_KEPT_PROTOCOLS = ['Stationary', 'Traveling', 'P21', 'P22', 'Stationary Count', 'Traveling Count', 'eBird - Stationary Count', 'eBird - Traveling Count']
_STATIONARY = ['Stationary', 'P21', 'Stationary Count', 'eBird - Stationary Count']


def polars_matrix(path):
    "(checklist ids, column names, uint8 matrix) of an EBD file, by a polars lazy pipeline."
    import numpy as np, polars as pl
    c, num = pl.col, lambda n: pl.col(n).cast(pl.Float64, strict=False)   # (an empty or unparsable value: null, which fails a filter)
    distance = pl.when(c('OBSERVATION TYPE').is_in(_STATIONARY)).then(num('EFFORT DISTANCE KM').fill_null(0)).otherwise(num('EFFORT DISTANCE KM'))
    rows = pl.scan_csv(path, separator='\t', quote_char=None, infer_schema=False, encoding='utf8-lossy').select(
        id=pl.coalesce(c('GROUP IDENTIFIER'), c('SAMPLING EVENT IDENTIFIER')), cat=c('CATEGORY'), sci=c('SCIENTIFIC NAME'),
        common=c('COMMON NAME'), order=num('TAXONOMIC ORDER'),
        keep=(num('ALL SPECIES REPORTED') == 1) & c('OBSERVATION TYPE').is_in(_KEPT_PROTOCOLS) & (num('DURATION MINUTES') <= 360)
             & (distance <= 10) & (num('NUMBER OBSERVERS') <= 10))
    names, pairs = pl.collect_all([rows.group_by('cat', 'sci', 'common', 'order').len(),   # (the rollup is worked out on these few rows)
                                   rows.filter('keep').group_by('id', 'cat', 'sci').len()])
    cat, sci = c('cat').str.strip_chars().str.to_lowercase(), c('sci').str.strip_chars()
    tri, full = sci.str.extract(_TRINOMIAL, 1), cat.is_in(['species', 'issf', 'intergrade'])
    taxa = names.with_columns(
        taxon=pl.when(sci.is_null() | (sci == '')).then(None).when(full | (cat == 'form')).then(pl.coalesce(tri, sci))
                .when((cat == 'domestic') & sci.str.contains(_BINOMIAL)).then(sci),
        prio=pl.when(full).then(pl.when(tri.is_null()).then(0).otherwise(2)).when(cat == 'domestic').then(1)
               .when(cat == 'form').then(pl.when(tri.is_null()).then(1).otherwise(2))).filter(c('taxon').is_not_null())
    common = c('common').str.strip_chars()
    taxa = taxa.with_columns(common=pl.when(c('prio') == 0).then(common).otherwise(common.str.replace(r'\s*\(.*\)\s*$', '')))
    pairs = pairs.join(taxa.select('cat', 'sci', 'taxon').unique(), on=['cat', 'sci']).select('id', 'taxon').unique()
    names = (taxa.group_by('taxon').agg(c('common', 'order').sort_by('prio', 'order', nulls_last=True).first())
             .with_columns(common=pl.when(c('common').is_null() | (c('common') == '')).then(c('taxon')).otherwise(c('common')))
             .filter(c('taxon').is_in(pairs['taxon'].unique().implode())).sort('order', 'common', nulls_last=True))
    ids = pairs['id'].unique().sort()
    X = np.zeros((len(ids), len(names)), np.uint8)
    X[pairs['id'].cast(pl.Enum(ids)).to_physical().to_numpy(), pairs['taxon'].cast(pl.Enum(names['taxon'])).to_physical().to_numpy()] = 1
    columns = names.select(pl.when(c('common').is_duplicated()).then(pl.format('{} ({})', 'common', 'taxon')).otherwise('common')).to_series()
    return ids.to_list(), columns.to_list(), X


def _in(values): return '(' + ', '.join(f"'{v}'" for v in values) + ')'

_DUCKDB_SQL = r"""
CREATE TEMP TABLE rows AS
SELECT coalesce(nullif(trim("GROUP IDENTIFIER"), ''), "SAMPLING EVENT IDENTIFIER") AS id, CATEGORY AS cat, "SCIENTIFIC NAME" AS sci,
       "COMMON NAME" AS common, try_cast("TAXONOMIC ORDER" AS DOUBLE) AS ord,
       try_cast("ALL SPECIES REPORTED" AS DOUBLE) = 1 AND "OBSERVATION TYPE" IN {KEPT}
       AND try_cast("DURATION MINUTES" AS DOUBLE) <= 360 AND try_cast("NUMBER OBSERVERS" AS DOUBLE) <= 10
       AND (CASE WHEN "OBSERVATION TYPE" IN {STATIONARY} THEN coalesce(try_cast("EFFORT DISTANCE KM" AS DOUBLE), 0)
                 ELSE try_cast("EFFORT DISTANCE KM" AS DOUBLE) END) <= 10 AS keep
FROM read_csv($path, delim='\t', quote='', escape='', header=true, all_varchar=true);
CREATE TEMP TABLE taxa AS
WITH c AS (SELECT DISTINCT lower(trim(cat)) AS c, trim(sci) AS s, cat, sci, trim(common) AS common, ord FROM rows),
     t AS (SELECT *, nullif(regexp_extract(s, '{TRI}', 1), '') AS tri FROM c),
     k AS (SELECT *, CASE WHEN s = '' OR s IS NULL THEN NULL
                          WHEN c IN ('species', 'issf', 'intergrade', 'form') THEN coalesce(tri, s)
                          WHEN c = 'domestic' AND regexp_matches(s, '{BI}') THEN s END AS taxon,
                     CASE WHEN c IN ('species', 'issf', 'intergrade') THEN (CASE WHEN tri IS NULL THEN 0 ELSE 2 END)
                          WHEN c = 'domestic' THEN 1 WHEN c = 'form' THEN (CASE WHEN tri IS NULL THEN 1 ELSE 2 END) END AS prio
              FROM t)
SELECT cat, sci, taxon, prio, ord, CASE WHEN prio = 0 THEN common ELSE regexp_replace(common, '\s*\(.*\)\s*$', '') END AS common
FROM k WHERE taxon IS NOT NULL;
CREATE TEMP TABLE pairs AS
SELECT DISTINCT r.id, t.taxon FROM rows r JOIN (SELECT DISTINCT cat, sci, taxon FROM taxa) t ON r.cat = t.cat AND r.sci = t.sci WHERE r.keep;
CREATE TEMP TABLE cols AS
WITH n AS (SELECT taxon, arg_min(common, (prio, coalesce(ord, 'infinity'::DOUBLE))) AS common, arg_min(ord, (prio, coalesce(ord, 'infinity'::DOUBLE))) AS ord
           FROM taxa WHERE taxon IN (SELECT taxon FROM pairs) GROUP BY taxon)
SELECT taxon, CASE WHEN count(*) OVER (PARTITION BY common) > 1 THEN common || ' (' || taxon || ')' ELSE coalesce(nullif(common, ''), taxon) END AS name,
       row_number() OVER (ORDER BY ord NULLS LAST, common) - 1 AS j
FROM n;
CREATE TEMP TABLE ids AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM (SELECT DISTINCT id FROM pairs)
""".replace('{KEPT}', _in(_KEPT_PROTOCOLS)).replace('{STATIONARY}', _in(_STATIONARY)).replace('{TRI}', _TRINOMIAL).replace('{BI}', _BINOMIAL)


def duckdb_matrix(path):
    "(checklist ids, column names, uint8 matrix) of an EBD file, by DuckDB SQL."
    import duckdb, numpy as np
    con = duckdb.connect()
    for statement in _DUCKDB_SQL.split(';'):
        con.execute(statement, {'path': str(path)} if '$path' in statement else None)
    ij = con.execute('SELECT i, j FROM pairs JOIN ids USING (id) JOIN cols USING (taxon)').fetchnumpy()
    ids = con.execute('SELECT id FROM ids ORDER BY i').fetchnumpy()['id']
    columns = con.execute('SELECT name FROM cols ORDER BY j').fetchnumpy()['name']
    X = np.zeros((len(ids), len(columns)), np.uint8)
    X[ij['i'], ij['j']] = 1
    return list(ids), list(columns), X


PEERS = {'polars': polars_matrix, 'duckdb': duckdb_matrix}


def peers_installed(methods) -> list:
    "`methods` less the peers whose library is not installed (each named, with how to install it)."
    kept = []
    for m in methods:
        if m in PEERS:
            import importlib.util
            if importlib.util.find_spec(m) is None:   # (not imported here: the parent stays small)
                print(f'{m} is not installed: its row is skipped (pip install -r benchmarks/requirements-peers.txt)', flush=True)
                continue
        kept.append(m)
    return kept


def compare(ref, other, name) -> list:
    "The differences (as sentences) between the package's matrix `ref` and a peer's `other` (.npz files of `_save`); [] when they are equal."
    import numpy as np
    a, b = np.load(ref), np.load(other)
    said = []
    for what in ('ids', 'columns'):
        x, y = a[what], b[what]
        if len(x) == len(y) and (x == y).all(): continue
        only_a, only_b = np.setdiff1d(x, y), np.setdiff1d(y, x)
        said.append(f"{name}: {what} differ: the package has {len(x):,}, {name} {len(y):,}; only in the package {len(only_a):,} "
                    f"{only_a[:5].tolist()}, only in {name} {len(only_b):,} {only_b[:5].tolist()}"
                    + ('' if len(only_a) or len(only_b) else ' (the same set in another order)'))
    ids, ia, ib = np.intersect1d(a['ids'], b['ids'], return_indices=True)
    cols, ca, cb = np.intersect1d(a['columns'], b['columns'], return_indices=True)
    d = a['X'][np.ix_(ia, ca)] != b['X'][np.ix_(ib, cb)]
    if d.any():
        r, k = np.argwhere(d)[0]
        said.append(f"{name}: {int(d.sum()):,} values differ on the {len(ids):,} ids x {len(cols):,} columns both have, "
                    f"e.g. {ids[r]} x {str(cols[k])!r}: the package {a['X'][ia[r], ca[k]]}, {name} {b['X'][ib[r], cb[k]]}")
    return said



# --profile: where `build_species_matrix`'s time goes (stage timers, and py-spy when it is installed)
_STAGES = ['_finish_read', '_filter_checklists', '_presence_matrix', '_drop_empty_checklists', 'merge_group_checklists',
           'apply_thresholds', '_kept_columns', '_species_matrix']

def stages(path) -> dict:
    "Wall and CPU time of the read (parse threads and per-block reduction) and of each later stage of `build_species_matrix`, by wrapping the cleaning module's stage functions in this process (the package is not changed)."
    import ebird_vae.ebd.cleaning as cl
    acc, marks = {}, {}
    def wrap(name):
        f = getattr(cl, name)
        def timed(*a, **k):
            t, c = time.perf_counter(), time.process_time()
            if name == '_finish_read': marks['read'] = t, c
            try: return f(*a, **k)
            finally: acc[name] = (time.perf_counter() - t, time.process_time() - c)
        setattr(cl, name, timed)
    for n in _STAGES: wrap(n)
    t, c = time.perf_counter(), time.process_time()
    cl.build_species_matrix(path)
    t1, c1 = time.perf_counter(), time.process_time()
    tr, cr = marks['read']
    return dict(total=(t1 - t, c1 - c), read=(tr - t, cr - c), after_read=(t1 - tr, c1 - cr), **acc)


def _py_spy():
    "The py-spy executable (beside this Python, or on PATH), or None."
    import shutil
    here = Path(sys.executable).parent / 'py-spy'
    return str(here) if here.exists() else shutil.which('py-spy')


def spy_summary(raw, rate, top=14) -> list:
    "Markdown lines: the thread time of a `py-spy record --threads --format raw` profile of `build_species_matrix`, by thread, by package function (inclusive) and by the deepest package line (where the C++ time of a pyarrow or numpy call is charged)."
    import collections, re
    work = []
    for line in Path(raw).read_text().splitlines():
        stack, n = line.rsplit(' ', 1)
        frames = stack.split(';')
        if any('build_species_matrix' in f for f in frames) or 'ebd-parse' in frames[0]: work.append((frames, int(n)))
    total = sum(n for _, n in work) or 1
    name = lambda f: re.sub(r' \((.*?):\d+\)$', r' (\1)', f)
    threads, incl, deepest = collections.Counter(), collections.Counter(), collections.Counter()
    for frames, n in work:
        threads['parse threads' if 'ebd-parse' in frames[0] else 'main thread'] += n
        for f in {name(f) for f in frames[1:] if 'ebird_vae/' in f}: incl[f] += n
        mine = [f for f in frames if 'ebird_vae/' in f]
        deepest[mine[-1] if mine else '(outside the package)'] += n
    share = lambda n: f'{100 * n / total:.0f}% ({n / rate:.2f} s)'
    md = [f"py-spy, {total:,} samples at {rate} Hz of the threads that worked ({total / rate:.2f} s of thread time): "
          + ', '.join(f'{k} {share(v)}' for k, v in threads.items()) + '.', '',
          '| package function (inclusive) | share of the thread time | | deepest package line | share |', '|---|---:|---|---|---:|']
    for (f, n), (g, m) in zip(incl.most_common(top), deepest.most_common(top)):
        md.append(f'| `{f}` | {share(n)} | | `{g}` | {share(m)} |')
    return md


def profile(path) -> list:
    "Markdown of `--profile`: the stage timers (two runs), and py-spy's view of one run when py-spy is installed."
    md = ['\n## Where `build_species_matrix` spends its time (`--profile`)\n',
          'Stage timers (each a fresh process; CPU time counts every thread while the stage ran):\n',
          '| run | total | the read (parse threads, checks, per-block reduction) | after the read (main thread) | ' + ' | '.join(f'`{s}`' for s in _STAGES) + ' |',
          '|---|' + '---:|' * (3 + len(_STAGES))]
    for k in range(2):
        r = run_child('stages', path)
        if 'error' in r: md.append(f"| {k + 1} | failed: {r['error']} |"); continue
        cell = lambda s: f"{r[s][0]:.2f} s ({r[s][1]:.2f} s CPU)" if s in r else ''
        md.append(f'| {k + 1} (load {r["load"]:.1f}) | ' + ' | '.join(cell(s) for s in ['total', 'read', 'after_read', *_STAGES]) + ' |')
    spy = _py_spy()
    if spy is None:
        md.append('\npy-spy is not installed (pip install -r benchmarks/requirements-peers.txt): no sampling profile.')
        return md
    import tempfile
    raw, rate = Path(tempfile.mkdtemp(prefix='bench_data_spy_')) / 'package.txt', 250
    p = subprocess.run([spy, 'record', '-r', str(rate), '--threads', '--format', 'raw', '-o', str(raw), '--', sys.executable, __file__, '--child', 'package', str(path)],
                       capture_output=True, text=True, timeout=600)
    if p.returncode or not raw.exists():
        md.append(f"\npy-spy failed (exit {p.returncode}): {(p.stderr.strip().splitlines() or [''])[-1][:300]}")
        return md
    return md + ['', f'`py-spy record -r {rate} --threads --format raw` of one `package` child (py-spy slows it down):', ''] + spy_summary(raw, rate)


BEFORE = {}   # '@before' -> (revision, directory holding its package)

def run_child(method, path, timeout=3600, save=None):
    "Figures of one method from a fresh process, or an error string; a method ending in '@before' runs the package of `--before`; `save`: where its matrix goes."
    base, _, at = method.partition('@')
    env = dict(os.environ)
    if at: env['PYTHONPATH'] = os.pathsep.join([str(BEFORE[at][1])] + [p for p in [env.get('PYTHONPATH')] if p])
    p = subprocess.run([sys.executable, __file__, '--child', base, str(path)] + (['--save', str(save)] if save else []),
                       capture_output=True, text=True, timeout=timeout, env=env)
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
          'polars-columns': "parsing only: polars, the package's columns",
          'polars': 'peer: polars lazy pipeline', 'duckdb': 'peer: DuckDB SQL'}


DEFAULT_METHODS = ('naive', 'package', 'package-nofilter', 'package-nochecks', 'quick-start', *PEERS)


def check_peers(saved, peers) -> dict:
    "{peer: its differences to the package's matrix (empty: equal)} from the matrices the first round saved under `saved`; printed as it goes."
    out = {}
    for m in peers:
        ref, other = saved / 'package.npz', saved / f'{m}.npz'
        if not (ref.exists() and other.exists()):
            out[m] = [f"{m}: no matrix to compare ({'the package' if not ref.exists() else m} failed)"]
        else: out[m] = compare(ref, other, m)
        print(f"{m}: the same matrix as the package (ids, columns and values)" if not out[m] else '\n'.join(out[m]), flush=True)
    return out


def peers_section(results, runs, differences) -> list:
    "The markdown on the peers: each one's matrix against the package's, the threads of every method, and the target of issue 22."
    if not differences: return []
    by = {r['method']: r for r in results if 'error' not in r}
    pk = by.get('package')
    md = ['\n## Peers: the same matrix in polars and DuckDB\n']
    for m, diff in differences.items():
        if m not in by: md.append(f"- {m}: failed: {next(r for r in results if r['method'] == m)['error']}"); continue
        md.append(f"- {m}: " + ('the same matrix as the package: the same checklist ids in the same order, the same column names in the same '
                                f"order, the same values ({by[m]['shape'][0]:,} x {by[m]['shape'][1]:,})." if not diff else
                                'DIFFERENT from the package: ' + '; '.join(diff)))
    md.append('\nThreads (the most the process had while it worked, sampled every 20 ms; what the library is set to): ' +
              '; '.join(f"{method_label(m)}: {r['threads']} ({r['threads_set']})" for m, r in by.items() if 'threads' in r) + '.')
    loads = {m: ', '.join(f"{x['load']:.1f}" for x in runs[m] if 'load' in x) for m in by if m in runs}
    md.append('Load average (1 min) at the end of each run: ' + '; '.join(f'{m} {v}' for m, v in loads.items()) + '.')
    for m in differences:
        pr = by.get(m)
        if not (pk and pr): continue
        pairs = [k / p for k, p in zip(pk['seconds_all'], pr['seconds_all'])]
        md.append(f"\nTarget (issue 22, item 4), the package against {m}: time {pk['seconds']:.2f} s against {pr['seconds']:.2f} s "
                  f"({pk['seconds'] / pr['seconds']:.2f}x {m}'s; {'met' if pk['seconds'] <= pr['seconds'] else 'not met'}), CPU time "
                  f"{pk['cpu_seconds']:.2f} s against {pr['cpu_seconds']:.2f} s, peak {pk['peak_mb']:,.0f} MB against {pr['peak_mb']:,.0f} MB "
                  f"({'met' if pk['peak_mb'] <= pr['peak_mb'] else 'not met'}). Package over {m}, run by run (each pair in the same round): "
                  f"{', '.join(f'{x:.2f}' for x in pairs)}.")
    return md


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
    ap.add_argument('--save', help=argparse.SUPPRESS)
    ap.add_argument('--rows', type=int, default=1_000_000, help='rows of the benchmark file')
    ap.add_argument('--repeat', type=int, default=3, help='runs per method, interleaved (median time, max peak); 0 with --profile: the profile alone')
    ap.add_argument('--floor', action='store_true', help="also time parsing alone (pyarrow; polars if installed): the parser's floor")
    ap.add_argument('--big', action='store_true', help='also build a 10M-row (~3.4 GB) file with the package (peak < 2 GB?)')
    ap.add_argument('--before', metavar='REV', help='also run the builder and the Quick Start of the package at this git revision')
    ap.add_argument('--profile', action='store_true', help="also time build_species_matrix's stages, and sample it with py-spy if installed")
    ap.add_argument('--methods', help=f"comma-separated methods to run, of {', '.join(DEFAULT_METHODS)} (default: all; the peers when installed)")
    ap.add_argument('--out', default=str(HERE / 'results_data.md'), help='markdown file to write')
    a = ap.parse_args()
    if a.child: return child(*a.child, save=a.save)
    info = machine()
    path = ensure_file(a.rows)
    size = path.stat().st_size / 2**20
    if a.repeat == 0:                          # (`--repeat 0 --profile`: the profile alone, no timed runs)
        if not a.profile: ap.error('--repeat 0 runs nothing: add --profile, or give at least 1')
        text = '\n'.join([f"# Profile of `build_species_matrix`\n\n`python benchmarks/bench_data.py --rows {a.rows} --repeat 0 --profile`, "
                          f"{info['date']} UTC, {a.rows / 1e6:g}M rows ({size:,.0f} MB). Machine: {info['cpu']}, {info['usable_cores']} usable cores; "
                          f"load average {info['load_average']} at the start.", *profile(path)]) + '\n'
        print(text); Path(a.out).write_text(text)
        return
    methods = a.methods.split(',') if a.methods else list(DEFAULT_METHODS)
    unknown = [m for m in methods if m not in DEFAULT_METHODS]
    if unknown: ap.error(f"unknown methods {unknown}: choose from {', '.join(DEFAULT_METHODS)}")
    methods = peers_installed(methods)
    if any(m in PEERS for m in methods) and 'package' not in methods: methods.insert(0, 'package')   # (the peers are checked against it)
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
    import tempfile
    saved = Path(tempfile.mkdtemp(prefix='bench_data_matrices_'))
    for r in range(a.repeat):                # interleaved, so that every method meets the same machine load
        for m in methods:
            print(f'run {r + 1}/{a.repeat}: {m} ...', flush=True)
            runs[m].append(run_child(m, path, save=saved / f'{m}.npz' if r == 0 and m in ('package', *PEERS) else None))
        if r == 0 and 'naive' in runs and 'error' in runs['naive'][0]:
            print('naive read failed; measuring it with quoting=QUOTE_NONE as the baseline', flush=True)
            methods.insert(1, 'naive-quote-none'); runs['naive-quote-none'] = [run_child('naive-quote-none', path)]
    label = f'{a.rows / 1e6:g}M rows, {size:,.0f} MB'
    results = [dict(summarise(runs[m]), file=label) for m in methods]
    differences = check_peers(saved, [m for m in methods if m in PEERS])
    import shutil; shutil.rmtree(saved, ignore_errors=True)
    base = next((r for r in results if r['method'].startswith('naive') and 'error' not in r), None)
    if a.big:
        big = ensure_file(10_000_000)
        print('package on the 10M-row file ...', flush=True)
        results.append(dict(measure('package', big, 1), file=f'10M rows, {big.stat().st_size / 2**20:,.0f} MB'))
    info['load_average_end'] = ' '.join(f'{x:.1f}' for x in os.getloadavg())
    torch_mb = run_child('import-data', path).get('import_mb', float('nan'))
    md = ["# File-to-matrix benchmark\n",
          f"`python benchmarks/bench_data.py --rows {a.rows} --repeat {a.repeat}{f' --methods {a.methods}' if a.methods else ''}{' --floor' if a.floor else ''}{' --profile' if a.profile else ''}{' --big' if a.big else ''}{f' --before {a.before}' if a.before else ''}`, {info['date']} UTC.\n",
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
    md += peers_section(results, runs, differences)
    if a.profile: md += profile(path)
    text = '\n'.join(md) + '\n'
    print(text)
    Path(a.out).write_text(text)
    print(json.dumps(results, indent=1), file=sys.stderr)
    if any(differences.values()): sys.exit(1)   # (a peer whose matrix differs, or that failed, is a failure of the run)


if __name__ == '__main__':
    main()
