"""Issue 18, the cleaning's cases (`ebird_vae.ebd`): a value the builder cannot use is repaired with a warning or
left out with a warning and a report row, never kept as if it were right, whether the rows come from a file or from a
DataFrame. Each test fails on the builder as it was at 9cf6c30. The files are written by the package's own writer
(`ebird_vae.writer.ebd_text`): no real eBird records."""
import io
import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import ebird_vae.ebd.cleaning as ebd
from ebird_vae.ebd import (EBirdDataError, EBirdDataWarning, EBirdPreprocessor, build_species_matrix, ebd_text,
                           load_ebird_data, write_text)

HEADER = ebd_text([('S1', ['House Crow'])]).splitlines()[0].split('\t')
COL = {c: i for i, c in enumerate(HEADER)}


def edit(text: str, line: int, **values) -> str:
    "`text` with the fields of line `line` (1: the header) set to `values` (column names with '_' for ' ')."
    lines = text.splitlines(keepends=True)
    cells = lines[line - 1].rstrip('\n').split('\t')
    for k, v in values.items(): cells[COL[k.replace('_', ' ')]] = v
    lines[line - 1] = '\t'.join(cells) + '\n'
    return ''.join(lines)


def caught(f):
    "(f()'s result, or the EBirdDataError it raised; the messages of the EBirdDataWarnings it raised)."
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        try: r = f()
        except EBirdDataError as e: r = e
    return r, [str(w.message) for w in ws if issubclass(w.category, EBirdDataWarning)]


def source(tmp_path, text, kind):
    "The rows of `text` as the builder's input: the path of a file, or a DataFrame from `pd.read_csv` or `load_ebird_data` of it."
    p = write_text(tmp_path / 'ebd.txt', text)
    if kind == 'load':
        with warnings.catch_warnings(record=True) as ws:    # (the reader's warnings, re-raised where the build is caught)
            warnings.simplefilter('always')
            df = load_ebird_data(p)
        for w in ws: warnings.warn(w.message, w.category)
        return df
    return p if kind == 'path' else pd.read_csv(p, sep='\t', quoting=3)


KINDS = pytest.mark.parametrize('kind', ['path', 'frame'])


# 1. impossible calendar dates
@KINDS
def test_impossible_dates_are_missing_with_a_warning(tmp_path, kind):
    text = ebd_text([('S1', ['House Crow'], {'date': '2020-02-30'}), ('S2', ['House Crow'], {'date': '2021-04-31'}),
                     ('S3', ['House Crow'], {'date': '2020-03-01'}), ('S4', ['House Crow'], {'date': '1600-01-01'}),
                     ('S5', ['House Crow'], {'date': '9999-12-31'})])
    sm, ws = caught(lambda: build_species_matrix(source(tmp_path, text, kind)))
    assert not isinstance(sm, Exception), sm                     # (1600 and 9999: no OutOfBoundsDatetime)
    d = sm.checklists['observation_date']
    assert d[['S1', 'S2', 'S4', 'S5']].isna().all() and d['S3'] == pd.Timestamp('2020-03-01')
    said = [w for w in ws if 'OBSERVATION DATE' in w]
    assert len(said) == 1 and all(s in said[0] for s in ("S1 ('2020-02-30')", "S2 ('2021-04-31')", "S4 ('1600-01-01')", "S5 ('9999-12-31')"))
    sm, _ = caught(lambda: build_species_matrix(source(tmp_path, text, kind), date_range=('2020-03-01', '2021-05-01')))
    assert sm.matrix.index.tolist() == ['S3']                    # (not S1 rolled into March, nor S2 into May)


# 2. a checklist whose rows disagree
TWO_ROWS = [('S1', ['House Crow', 'Asian Koel', 'Black Kite']), ('S2', ['House Crow', 'Little Egret'])]

@pytest.mark.parametrize('kind', ['path', 'frame', 'load'])
@pytest.mark.parametrize('column, value', [('OBSERVATION DATE', '2024-01-16'), ('LOCALITY ID', 'L9'), ('ALL SPECIES REPORTED', '0'),
                                           ('DURATION MINUTES', '30'), ('NUMBER OBSERVERS', '2'), ('TIME OBSERVATIONS STARTED', '08:00:00'),
                                           ('LATITUDE', '10.5'), ('OBSERVATION TYPE', 'Stationary')])
def test_rows_that_disagree_leave_their_checklist_out(tmp_path, kind, column, value):
    text = edit(ebd_text(TWO_ROWS), 3, **{column.replace(' ', '_'): value})           # S1's second row
    sm, ws = caught(lambda: build_species_matrix(source(tmp_path, text, kind), apply_quality_filters=False))
    assert sm.matrix.index.tolist() == ['S2']
    rep = sm.report.set_index('step')
    assert rep.loc['inconsistent checklists', 'checklists_removed'] == 1 and rep.loc['inconsistent checklists', 'rows_removed'] == 3
    assert any(f'disagree on checklist metadata, in {column} (1) (S1)' in w for w in ws), ws


def test_rows_that_disagree_across_blocks(tmp_path):
    "S1's two rows are far apart, in different blocks of the streamed file: still compared."
    others = [(f'S{i}', ['House Crow', 'Asian Koel']) for i in range(2, 80)]
    lines = ebd_text([('S1', ['House Crow', 'Black Kite']), *others]).splitlines(keepends=True)
    moved = edit(''.join(lines[:1] + lines[2:3]), 2, OBSERVATION_DATE='2024-01-16').splitlines(keepends=True)[1]
    text = ''.join(lines[:2] + lines[3:] + [moved])
    sm, ws = caught(lambda: build_species_matrix(write_text(tmp_path / 'far.txt', text), block_size=1 << 12))
    assert 'S1' not in sm.matrix.index and len(sm.matrix) == 78
    assert any('in OBSERVATION DATE (1) (S1)' in w for w in ws), ws


# 3. impossible effort and coordinates
EFFORT = [('S1', ['House Crow'], {'duration': '-5'}), ('S2', ['House Crow'], {'distance': '-1'}),
          ('S3', ['House Crow'], {'observers': '0'}), ('S4', ['House Crow'], {'observers': '2.5'}),
          ('S5', ['House Crow'], {'lat': '200'}), ('S6', ['House Crow'], {'lon': '999'}), ('S7', ['House Crow'])]

@KINDS
def test_impossible_effort_and_coordinates_are_never_kept_as_valid(tmp_path, kind):
    text = ebd_text(EFFORT)
    sm, ws = caught(lambda: build_species_matrix(source(tmp_path, text, kind)))
    assert sm.matrix.index.tolist() == ['S7']                    # the effort filters do not keep a value that cannot be
    effort = next(w for w in ws if w.startswith('effort values that cannot be'))
    for s in ("DURATION MINUTES negative (S1 ('-5'))", "EFFORT DISTANCE KM negative (S2 ('-1'))", "S3 ('0')", "S4 ('2.5')"): assert s in effort, effort
    assert any("S5 ('200, 76.3'), S6 ('10, 999')" in w for w in ws), ws
    sm, _ = caught(lambda: build_species_matrix(source(tmp_path, text, kind), apply_quality_filters=False))
    assert sm.matrix.index.tolist() == ['S1', 'S2', 'S3', 'S4', 'S7']   # no filter: kept, with the value missing
    ck = sm.checklists
    assert ck.loc['S1', 'duration_minutes'] != ck.loc['S1', 'duration_minutes'] and np.isnan(ck.loc['S2', 'effort_distance_km'])
    assert ck.loc[['S3', 'S4'], 'number_observers'].isna().all()
    assert sm.report.set_index('step').loc['impossible coordinates', 'checklists_removed'] == 2


# 4. checklists that lost a row to a refused value
def test_a_frame_row_refused_leaves_its_checklist_out(tmp_path):
    text = edit(ebd_text(TWO_ROWS), 3, CATEGORY='abc')            # S1 loses its Asian Koel row
    sm, ws = caught(lambda: build_species_matrix(source(tmp_path, text, 'frame')))
    assert sm.matrix.index.tolist() == ['S2']
    assert sm.read_info.damaged_checklists == {'S1'}
    assert sm.report.set_index('step').loc['damaged checklists', 'checklists_removed'] == 1
    assert any(w.startswith('1 checklist(s) lost a row that was refused as malformed (S1)') for w in ws), ws


def test_damaged_checklists_of_the_reader_are_left_out(tmp_path, monkeypatch):
    "The reader records in `ReadInfo.damaged_checklists` the checklists that lost a row; the builder leaves them out (file and `load_ebird_data`)."
    p = write_text(tmp_path / 'ebd.txt', ebd_text(TWO_ROWS))
    read = ebd.iter_batches
    def reader_that_refused_a_row_of_s1(*a, info, **kw):
        yield from read(*a, info=info, **kw)
        info.damaged_checklists.add('S1')
    monkeypatch.setattr(ebd, 'iter_batches', reader_that_refused_a_row_of_s1)
    sm, ws = caught(lambda: build_species_matrix(p))
    assert sm.matrix.index.tolist() == ['S2'] and any('(S1)' in w for w in ws)
    monkeypatch.undo()
    df = load_ebird_data(p)
    df.attrs['read_info']['damaged_checklists'] = ['S1']
    sm, ws = caught(lambda: build_species_matrix(df))
    assert sm.matrix.index.tolist() == ['S2'] and any('(S1)' in w for w in ws)


# 5. a DataFrame goes through the checks a file gets
def test_frame_and_file_refuse_the_same_rows(tmp_path):
    text = ebd_text([('S1', ['House Crow', 'Asian Koel'], {'complete': '2'}), ('S2', ['House Crow'], {'lat': ''}),
                     ('S3', ['House Crow', 'Black Kite'])])
    file_sm, file_ws = caught(lambda: build_species_matrix(source(tmp_path, text, 'path')))
    frame_sm, frame_ws = caught(lambda: build_species_matrix(source(tmp_path, text, 'frame')))
    assert frame_sm.matrix.index.tolist() == file_sm.matrix.index.tolist() == ['S3']
    said = ' '.join(frame_ws)
    assert 'skipped 3 rows' in said and 'ALL SPECIES REPORTED is not 0 or 1' in said and 'LATITUDE is not a number' in said, frame_ws
    assert frame_sm.report['rows_removed'][0] == file_sm.report['rows_removed'][0] == 3


# 6. option values checked up front
@pytest.mark.parametrize('option, value, says', [
    ('date_range', '2020', 'date_range must be None or a pair (first, last) of dates'),
    ('date_range', ('2020-12-31', '2020-01-01'), 'first <= last'), ('date_range', ('2020-02-30', None), 'date_range must be'),
    ('region', 5, 'region must be None, a country, state or county code'),
    ('max_duration_minutes', '60', 'max_duration_minutes must be None or a number of minutes >= 0'),
    ('max_distance_km', -1, 'max_distance_km must be'), ('max_observers', '10', 'max_observers must be'),
    ('species', 'House Crow', 'one string is not a list'), ('species', ['House Crow', 'House Crow'], "species names ['House Crow'] more than once"),
    ('protocols', 5, 'protocols must be'), ('rollup', 'no', 'rollup must be True or False'), ('collapse_groups', None, 'True or False'),
    ('apply_quality_filters', 'False', 'True or False'), ('complete_only', 2, 'True or False'), ('block_size', 'big', 'block_size must be')])
def test_option_values_are_checked(tmp_path, option, value, says):
    p = write_text(tmp_path / 'ebd.txt', ebd_text(TWO_ROWS))
    with pytest.raises(EBirdDataError, match=re.escape(says)): build_species_matrix(p, **{option: value})
    if option not in ('species', 'apply_quality_filters'):
        with pytest.raises(EBirdDataError, match=re.escape(says)): EBirdPreprocessor(**{option: value}).fit(p)


# 7. when nothing is left, the step that removed the last checklists and the option to change
def test_nothing_left_names_the_step_that_removed_them(tmp_path):
    p = write_text(tmp_path / 'ebd.txt', ebd_text([('S1', ['House Crow'])]))
    with pytest.raises(EBirdDataError, match=r"after the 'rare species \(<2\)' step .* Lower min_species_observations"):
        build_species_matrix(p, min_species_observations=2, min_checklist_species=1)
    issf = write_text(tmp_path / 'issf.txt', ebd_text([('S1', [('House Crow', 'Corvus splendens insolens', 'issf')])]))
    with pytest.raises(EBirdDataError, match=r"after the 'species rows' step .* Pass rollup=True"):
        build_species_matrix(issf, rollup=False)


# 8. more than 2**20 taxa
def test_keys_hold_more_than_a_million_taxa():
    "A registry that has met 2**20 taxa already: the next taxa stay on their own checklists."
    reg = ebd._Registry()
    n = 1 << 20
    reg.sci, reg.common, reg.prio, reg.order = [f'x{i}' for i in range(n)], [''] * n, [0] * n, [0.0] * n
    rows = pd.read_csv(io.StringIO(ebd_text([('S1', ['House Crow']), ('S2', ['Asian Koel'])])), sep='\t', quoting=3, dtype=str, keep_default_na=False)
    keys = [ebd._reduce_block(pa.Table.from_pandas(rows, preserve_index=False), reg)]
    code = reg.finish()[0]
    X = ebd._presence_matrix(keys, code, np.ones(2, bool), list(range(n + 2)))
    assert X.sum() == 2 and X[0, n] == 1 and X[1, n + 1] == 1


def test_packed_keys_round_trip_or_refuse():
    rows, taxa = np.array([0, 3, 9]), np.array([(1 << 20) + 1, 1 << 22, 5])
    assert [a.tolist() for a in ebd._unpack_keys(ebd._pack_keys(rows, taxa))] == [rows.tolist(), taxa.tolist()]
    with pytest.raises(EBirdDataError, match='distinct taxa'): ebd._pack_keys(np.array([0]), np.array([1 << 40]))


# 9. no SettingWithCopyWarning (pandas 2.x)
def test_no_setting_with_copy_warning(tmp_path):
    p = write_text(tmp_path / 'ebd.txt', ebd_text([('S1', ['House Crow', 'Asian Koel']), ('S2', ['House Crow'])]))
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        sm = build_species_matrix(p, min_checklist_species=2)        # (a threshold drops a checklist: the frame is a slice)
    assert sm.matrix.index.tolist() == ['S1']
    assert not [w for w in ws if 'SettingWithCopy' in w.category.__name__], [str(w.message) for w in ws]


# 10. any single damaged value: a warning names it, or the matrix is that of the file without its row
BASE = [('S1', ['House Crow', 'Asian Koel', 'Black Kite']), ('S2', ['House Crow']), ('S3', ['Little Egret', 'Common Myna'], {'group': 'G1'}),
        ('S4', ['Asian Koel', 'House Crow'], {'group': 'G1'}), ('S5', ['Rock Pigeon'], {'protocol': 'Stationary'}), ('S6', ['Black Kite', 'Asian Koel'])]
IMPOSSIBLE = {'DURATION MINUTES': ['-5', 'abc', '-0.5'], 'EFFORT DISTANCE KM': ['-1', 'x'], 'NUMBER OBSERVERS': ['0', '2.5', '-1'],
              'LATITUDE': ['200', '-91', '', 'abc'], 'LONGITUDE': ['999', '-181', ''], 'ALL SPECIES REPORTED': ['2', '', 'yes'],
              'OBSERVATION DATE': ['2020-02-30', '2021-04-31', '1600-01-01', '9999-01-01', '2020-13-45', ''],
              'CATEGORY': ['abc', ''], 'SAMPLING EVENT IDENTIFIER': ['', 'X1']}
CHANGED = {'OBSERVATION DATE': '2024-02-01', 'LOCALITY ID': 'L7', 'ALL SPECIES REPORTED': '0', 'DURATION MINUTES': '15',
           'TIME OBSERVATIONS STARTED': '06:30:00', 'OBSERVER ID': 'obsr9', 'GROUP IDENTIFIER': 'G5'}
BASE_LINES = ebd_text(BASE).splitlines(keepends=True)
MULTI = [i for i in range(2, len(BASE_LINES) + 1)                        # lines of checklists with more than one row
         if sum(l.split('\t')[COL['SAMPLING EVENT IDENTIFIER']] == BASE_LINES[i - 1].split('\t')[COL['SAMPLING EVENT IDENTIFIER']] for l in BASE_LINES) > 1]

damage_st = st.one_of(
    st.tuples(st.integers(2, len(BASE_LINES)), st.sampled_from(sorted(IMPOSSIBLE))).flatmap(
        lambda lc: st.tuples(st.just(lc[0]), st.just(lc[1]), st.sampled_from(IMPOSSIBLE[lc[1]]))),
    st.tuples(st.sampled_from(MULTI), st.sampled_from(sorted(CHANGED))).map(lambda lc: (lc[0], lc[1], CHANGED[lc[1]])))


def named(ws, line, cid, value) -> bool:
    "Whether a warning names the damage: its checklist, its line (file) or row position (DataFrame), or its value."
    pat = re.compile(rf"\b{re.escape(cid)}\b|\b(lines?|positions?) [0-9, ]*\b({line}|{line - 2})\b" + (rf"|{re.escape(repr(value))}" if value else ''))
    return any(pat.search(w) for w in ws)


def as_tuple(r):
    if isinstance(r, Exception): return str(r).split(' (read ')[0]
    m = r.matrix.sort_index().sort_index(axis=1)
    return tuple(m.index), tuple(m.columns), m.to_numpy().tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(damage_st, st.sampled_from(['path', 'frame', 'load']), st.booleans())
def test_a_damaged_value_is_named_or_changes_nothing(tmp_path_factory, damage, kind, filters):
    line, column, value = damage
    tmp = tmp_path_factory.mktemp('d')
    cid = BASE_LINES[line - 1].split('\t')[COL['SAMPLING EVENT IDENTIFIER']]
    damaged = edit(''.join(BASE_LINES), line, **{column.replace(' ', '_'): value})
    r, ws = caught(lambda: build_species_matrix(source(tmp, damaged, kind), apply_quality_filters=filters))
    if named(ws, line, cid, value): return
    without, _ = caught(lambda: build_species_matrix(source(tmp, ''.join(BASE_LINES[:line - 1] + BASE_LINES[line:]), kind), apply_quality_filters=filters))
    assert as_tuple(r) == as_tuple(without), (damage, kind, filters, ws)


def test_rows_refused_in_a_loaded_frame_are_named(tmp_path):
    "A DataFrame from `load_ebird_data` (which carries the file's read_info) whose values are then damaged: the rows its own checks refuse are named in a warning, not only counted."
    from ebird_vae.ebd import load_ebird_data
    p = write_text(tmp_path / 'ok.txt', ebd_text([('S1', ['House Crow']), ('S2', ['House Crow', 'Asian Koel'])]))
    df = load_ebird_data(p)
    df['ALL SPECIES REPORTED'] = df['ALL SPECIES REPORTED'].astype(int)
    df.loc[df.index[1], 'ALL SPECIES REPORTED'] = 2
    with pytest.warns(EBirdDataWarning) as ws:
        sm = build_species_matrix(df, apply_quality_filters=False)
    said = [str(w.message) for w in ws]
    assert any('the DataFrame: skipped 1 rows' in m and 'ALL SPECIES REPORTED' in m and 'positions 1' in m for m in said), said
    assert list(sm.matrix.index) == ['S1']   # (S2 lost a row: left out whole)
