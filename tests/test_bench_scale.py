"""Smoke test of the scale benchmark (issue 22 part 5) on a tiny file, and of the generator's `n_species` it relies on.

`benchmarks/bench_scale.py` is run end to end on a file of a few thousand rows (each stage in its own process, as in a
real run), into a temporary directory; its fit and projection helpers are checked on made-up figures.
"""
import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ebird_vae.ebd.synthetic import SAMPLE_CHECKLISTS, SAMPLE_CHUNK, SAMPLE_SEED, generate_ebd, sample_path, write_ebd

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_scale', ROOT / 'benchmarks' / 'bench_scale.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_more_species_in_the_file():
    rows, truth = generate_ebd(300, seed=0, n_species=1500)
    sp = rows[rows.CATEGORY == 'species']['SCIENTIFIC NAME']
    assert sp.nunique() > 450                                        # more than Kerala's 399 can give
    assert sp.str.startswith(('Fictavis', 'Pseudornis', 'Mimavis', 'Synthornis', 'Nullavis', 'Umbravis')).any()
    with pytest.raises(ValueError, match='fewer than the'):
        generate_ebd(10, n_species=50)


def test_default_output_unchanged(tmp_path):
    "`n_species=None` (the default) still writes the bundled sample byte for byte."
    write_ebd(tmp_path / 's.txt.gz', n_checklists=SAMPLE_CHECKLISTS, seed=SAMPLE_SEED, chunk_checklists=SAMPLE_CHUNK)
    md5 = lambda p: hashlib.md5(gzip.open(p, 'rb').read()).hexdigest()
    assert md5(tmp_path / 's.txt.gz') == md5(sample_path())


def test_bench_scale_end_to_end(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'DATA', tmp_path / 'data')
    out = tmp_path / 'results.md'
    out.write_text('hand-written notes\n')
    monkeypatch.setattr(sys, 'argv', ['bench_scale.py', '--rows', '3000', '--species', '450', '--sweep-species', '420',
                                      '--sweep-rows', '3000', '--stages', 'build,build+train', '--out', str(out)])
    bench.main()
    text = out.read_text()
    assert text.startswith('hand-written notes\n' + bench.MARK)           # the notes above the marker are kept
    got = json.loads(out.with_suffix('.json').read_text())
    runs = [r for r in got['results'] if 'error' not in r]
    assert {r['stage'] for r in runs} == {'build', 'build+train'}, got['results']
    assert all(r['peak_mb'] > 0 and r['presences'] > 0 and r['species'] > 100 for r in runs)
    assert {r['target_rows'] for r in got['sweep']} == {3000} and len({r['file'] for r in got['sweep']}) == 2
    assert '## Projection' in text and 'national file' in text
    assert (tmp_path / 'data' / 'ebd_scale_3k_450sp.txt').exists()


def test_fit_helpers(bench):
    rs = [dict(rows=1e6, presences=1e6, peak_mb=600, seconds=10), dict(rows=4e6, presences=4e6, peak_mb=1200, seconds=40)]
    assert bench.growth(rs, 'rows', 'seconds') == pytest.approx(1.0)
    assert bench.growth(rs, 'presences', 'peak_mb') == pytest.approx(0.5)
    assert bench.growth(rs, 'presences', 'peak_mb', base=400) == pytest.approx(1.0)   # linear above the imports
    a, b = bench.slope(rs, 'presences', 'peak_mb')
    assert (a, b) == (pytest.approx(400), pytest.approx(2e-4))
    assert bench.growth(rs[:1], 'rows', 'seconds') is None
    assert [bench._n(t) for t in ('16M', '500k', '3000')] == [16_000_000, 500_000, 3000]
