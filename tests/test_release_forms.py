"Issue 18, part 1: every value form a real EBD release writes is read, and the same data in an older release's forms gives today's matrix."
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ebird_vae.ebd import build_species_matrix, create_species_matrix
from ebird_vae.reader import load_ebird_data
from ebird_vae.schema import EBirdDataWarning, FIELD_CHECKS, field_problem
from ebird_vae.synthetic import write_ebd
from ebird_vae.writer import RELEASES, ebd_text, write_text

OLDER = [r for r in RELEASES if r != '2025']

# (column, value) forms real files write: each must pass `FIELD_CHECKS` (see "Value forms in real releases" in 00a_schema)
WRITTEN = [('EFFORT DISTANCE KM', v) for v in ('.499', '.805', '.161', '1.609', '0.499', '12', '')] + \
          [('LATITUDE', v) for v in ('.5', '-.25', '10.0325', '-33.8688')] + [('LONGITUDE', '-.75')] + \
          [('DURATION MINUTES', v) for v in ('60', '.5', '')] + [('NUMBER OBSERVERS', v) for v in ('1', '12', '')] + \
          [('OBSERVATION COUNT', v) for v in ('1', '250', 'X')] + [('SCIENTIFIC NAME', 'Corvus splendens')] + \
          [('TIME OBSERVATIONS STARTED', v) for v in ('07:05:00', '23:59:59', '')] + [('OBSERVATION DATE', '2017-03-01')]

# forms no release writes: each must be refused
NEVER = [('EFFORT DISTANCE KM', v) for v in ('1.', '5e-1', '+1', '1,609', 'abc')] + [('LATITUDE', v) for v in ('', '.', '1e3')] + \
        [('OBSERVATION COUNT', v) for v in ('0', '-5', 'abc', '2.5', '07', '', 'x')] + [('SCIENTIFIC NAME', v) for v in ('', '  ')] + \
        [('TIME OBSERVATIONS STARTED', v) for v in ('7:05:00', '24:00:00', '07:05 AM')] + [('OBSERVATION DATE', '2017-3-1')]


@pytest.mark.parametrize('column,value', WRITTEN)
def test_release_forms_pass_the_checks(column, value):
    assert field_problem(column, value) is None


@pytest.mark.parametrize('column,value', NEVER)
def test_forms_no_release_writes_are_refused(column, value):
    assert column in FIELD_CHECKS
    assert field_problem(column, value) == f'{column} is {value!r}, not {FIELD_CHECKS[column][1]}'


def _quiet(f, *args, **kw):
    "`f(...)`, failing on any EBirdDataWarning (a valid file is read without repairs or skips)."
    with warnings.catch_warnings():
        warnings.simplefilter('error', EBirdDataWarning)
        return f(*args, **kw)


def _same(a, b):
    "Two `SpeciesMatrix`es are identical: ids, columns, values, scientific names, checklist metadata and cleaning report."
    pd.testing.assert_frame_equal(a.matrix, b.matrix)
    assert a.species == b.species and a.scientific_names == b.scientific_names
    pd.testing.assert_frame_equal(a.checklists, b.checklists)
    pd.testing.assert_frame_equal(a.report, b.report)


def _checklists(distances):
    "Three small checklists whose EFFORT DISTANCE KM are `distances`."
    return [('S1', ['House Crow', 'Common Myna'], {'distance': distances[0]}),
            ('S2', ['House Crow', 'Asian Koel', 'Black Kite'], {'distance': distances[1], 'lon': '-.75', 'lat': '.5'}),
            ('S3', ['Little Egret'], {'distance': distances[2]})]


def test_leading_dot_decimals_are_read_as_numbers(tmp_path):
    "The issue's case: `.499` (2017-era releases, 2025 'Download My Data') made the row 'malformed' and it was dropped."
    old = write_text(tmp_path / 'old.txt', ebd_text(_checklists(['.499', '.805', '1.609']), release='2017', trailing_tab=True))
    new = write_text(tmp_path / 'new.txt', ebd_text(_checklists(['0.499', '0.805', '1.609']), release='2017', trailing_tab=True))
    a, b = _quiet(build_species_matrix, old), _quiet(build_species_matrix, new)
    _same(a, b)
    assert a.matrix.index.tolist() == ['S1', 'S2', 'S3']
    assert a.checklists.effort_distance_km.tolist() == pytest.approx([0.499, 0.805, 1.609])
    assert a.read_info.skipped_rows == 0
    df = _quiet(load_ebird_data, old)                                 # the typed columns read .499 as 0.499 too
    assert df['EFFORT DISTANCE KM'].tolist() == pytest.approx([0.499, 0.499, 0.805, 0.805, 0.805, 1.609])
    assert df['LATITUDE'].tolist()[2:5] == [0.5] * 3 and df['LONGITUDE'].tolist()[2:5] == [-0.75] * 3
    m, species = _quiet(create_species_matrix, df)
    pd.testing.assert_frame_equal(m, b.matrix)
    raw = pd.read_csv(old, sep='\t', quoting=3, dtype=str, keep_default_na=False)   # a DataFrame of the file's text
    _same(_quiet(build_species_matrix, raw), _quiet(build_species_matrix, pd.read_csv(new, sep='\t', quoting=3, dtype=str, keep_default_na=False)))
    pd.testing.assert_frame_equal(_quiet(build_species_matrix, raw).matrix, b.matrix)


@pytest.fixture(scope='module')
def today():
    "A synthetic file in today's form and its matrix (by the builder, and by load_ebird_data + create_species_matrix)."
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'today.txt'
        write_ebd(p, n_checklists=300, seed=7)
        yield p, _quiet(build_species_matrix, p), _quiet(create_species_matrix, _quiet(load_ebird_data, p))


@pytest.mark.parametrize('release', OLDER)
def test_older_release_forms_give_todays_matrix(release, today, tmp_path):
    "The same data in an older release's names, column order, protocol names, `.499` decimals and trailing tabs: the identical matrix."
    _, sm, (m, species) = today
    p = tmp_path / f'{release}.txt'
    write_ebd(p, n_checklists=300, seed=7, release=release, leading_dot=True, trailing_tab=True)
    text = p.read_text(encoding='utf-8')
    assert '\t.' in text and '\t0.' not in text and text.splitlines()[0].endswith('\t')   # (the forms are really there)
    _same(_quiet(build_species_matrix, p), sm)
    m2, species2 = _quiet(create_species_matrix, _quiet(load_ebird_data, p))
    pd.testing.assert_frame_equal(m2, m)
    assert species2 == species


def test_short_rows_give_todays_matrix(today, tmp_path):
    "Rows without their trailing empty fields (eBird's sample files) read like whole ones."
    _, sm, _ = today
    p = tmp_path / 'short.txt'
    write_ebd(p, n_checklists=300, seed=7, release='2019', short_rows=True)
    assert len({l.count('\t') for l in p.read_text(encoding='utf-8').splitlines()}) > 1
    _same(build_species_matrix(p), sm)                               # (padding the short rows is not a warning here)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(5, 60), release=st.sampled_from(OLDER),
       leading_dot=st.booleans(), trailing_tab=st.booleans())
def test_any_file_in_older_forms_gives_the_same_matrix(seed, n, release, leading_dot, trailing_tab):
    "Property: any small valid synthetic file, rewritten in an older release's number and column forms, builds the identical matrix."
    with tempfile.TemporaryDirectory() as d:
        write_ebd(f'{d}/new.txt', n_checklists=n, seed=seed)
        write_ebd(f'{d}/old.txt', n_checklists=n, seed=seed, release=release, leading_dot=leading_dot, trailing_tab=trailing_tab)
        kw = dict(apply_quality_filters=False)                       # (every checklist counts, not only those the filters keep)
        _same(_quiet(build_species_matrix, f'{d}/old.txt', **kw), _quiet(build_species_matrix, f'{d}/new.txt', **kw))


def test_counts_and_scientific_names_no_release_writes_are_refused(tmp_path):
    "A count of 0, -5 or abc, or an empty scientific name: the row is refused and reported, not read as a presence."
    text = ebd_text([('S1', ['House Crow', 'Common Myna'], {'count': '0'}), ('S2', ['House Crow', ('Asian Koel', '')]),
                     ('S3', ['Black Kite'], {'count': 'abc'}), ('S4', ['Little Egret'], {'count': '12'})])
    p = write_text(tmp_path / 'bad.txt', text)
    with pytest.warns(EBirdDataWarning, match='OBSERVATION COUNT is not a count above 0 or X') as ws:
        sm = build_species_matrix(p, apply_quality_filters=False)
    assert any('SCIENTIFIC NAME is not a scientific name' in str(w.message) for w in ws)
    assert sm.read_info.skipped_reasons == {'OBSERVATION COUNT': 3, 'SCIENTIFIC NAME': 1}
    assert 'Common Myna' not in sm.matrix.columns and sm.matrix.loc['S4', 'Little Egret'] == 1
    # the checklists that lost a row are left out whole, with a warning naming them (issue 18: no false absences)
    assert sm.read_info.damaged_checklists == {'S1', 'S2', 'S3'} and list(sm.matrix.index) == ['S4']   # (S1 and S3 lost every row)
    assert any("left out (report step 'damaged checklists')" in str(w.message) and '(S2)' in str(w.message) for w in ws)
    assert any('eBird writes a count above 0, or X' in str(w.message) for w in ws)
