"""Corruption suite (issue 12): damage a valid synthetic EBD the way real downloads and hand-edited extracts are
damaged, and check that every build either says so (an `EBirdDataError`, or an `EBirdDataWarning` naming the damage)
or gives exactly the matrix of the undamaged rows. Never a silently different matrix."""
import warnings
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ebird_vae.ebd import EBirdDataError, EBirdDataWarning, build_species_matrix, create_species_matrix, load_ebird_data
from ebird_vae.synthetic import write_ebd

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@lru_cache(1)
def base_lines(tmp_dir) -> tuple:
    "The lines (bytes, with their newlines) of a small valid file written by the project's generator."
    path = tmp_dir / 'base.txt'
    write_ebd(path, n_checklists=25, seed=3)
    return tuple(path.read_bytes().splitlines(keepends=True))


@pytest.fixture(scope='module')
def lines(tmp_path_factory):
    return base_lines(tmp_path_factory.mktemp('corruption'))


def build(path, **kw):
    "(matrix as a comparable tuple or the EBirdDataError, warning messages)."
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        try: m = build_species_matrix(path, **kw).matrix
        except EBirdDataError as e: return e, [str(w.message) for w in ws if issubclass(w.category, EBirdDataWarning)]
    return as_tuple(m), [str(w.message) for w in ws if issubclass(w.category, EBirdDataWarning)]


def as_tuple(m):
    m = m.sort_index().sort_index(axis=1)
    return (tuple(m.index), tuple(m.columns), m.to_numpy().tobytes())


def matrix_of(tmp, name, lines, **kw):
    "The matrix of a file holding exactly `lines` (an EBirdDataError if there is none)."
    p = tmp / name
    p.write_bytes(b''.join(lines))
    return build(p, **kw)[0]


_WHOLE = {}
def whole_matrix(tmp_path_factory, lines, filters):
    "The matrix of the undamaged file (built once per setting)."
    if filters not in _WHOLE: _WHOLE[filters] = matrix_of(tmp_path_factory.mktemp('w'), 'whole.txt', lines, apply_quality_filters=filters)
    return _WHOLE[filters]


def fields(line): return line.rstrip(b'\r\n').split(b'\t')
def join(cells, line): return b'\t'.join(cells) + line[len(line.rstrip(b'\r\n')):]

# each damage: (lines, drawn numbers) -> (damaged lines, index of the damaged line or None)
def lost_tab(ls, i, j):
    c = fields(ls[i]); j %= len(c) - 1
    return ls[:i] + (join(c[:j] + [c[j] + c[j + 1]] + c[j + 2:], ls[i]),) + ls[i + 1:]
def extra_tab(ls, i, j):
    c = fields(ls[i]); j %= len(c)
    return ls[:i] + (join(c[:j] + [b''] + c[j:], ls[i]),) + ls[i + 1:]
def split_field(ls, i, j):   # a tab typed inside a field: the row gains a field and everything after it shifts
    c = fields(ls[i]); j %= len(c)
    return ls[:i] + (join(c[:j] + [c[j][:1], c[j][1:]] + c[j + 1:], ls[i]),) + ls[i + 1:]
def blank_id(ls, i, j):
    c, k = fields(ls[i]), fields(ls[0]).index(b'SAMPLING EVENT IDENTIFIER')
    c[k] = b''
    return ls[:i] + (join(c, ls[i]),) + ls[i + 1:]
def header_again(ls, i, j): return ls[:i] + (ls[0],) + ls[i:]
def bad_date(ls, i, j):
    c, k = fields(ls[i]), fields(ls[0]).index(b'OBSERVATION DATE')
    c[k] = [b'2020-13-45', b'yesterday', b'', b'15/01/2024'][j % 4]
    return ls[:i] + (join(c, ls[i]),) + ls[i + 1:]
def latin1(ls, i, j):   # a value written in another encoding: an invalid UTF-8 byte
    c, k = fields(ls[i]), fields(ls[0]).index(b'COUNTY')
    c[k] = c[k][:2] + 'ā'.encode('latin-1', 'replace').replace(b'?', b'\xe2') + c[k][2:]
    return ls[:i] + (join(c, ls[i]),) + ls[i + 1:]

LINE_DAMAGE = [lost_tab, extra_tab, split_field, blank_id, header_again, bad_date, latin1]


@SETTINGS
@given(damage=st.sampled_from(LINE_DAMAGE), i=st.integers(1, 10_000), j=st.integers(0, 10_000), filters=st.booleans())
def test_damaged_row(lines, tmp_path_factory, damage, i, j, filters):
    tmp = tmp_path_factory.mktemp('d')
    i = 1 + i % (len(lines) - 1)
    bad = damage(lines, i, j)
    kw = dict(apply_quality_filters=filters)
    (tmp / 'bad.txt').write_bytes(b''.join(bad))
    got, said = build(tmp / 'bad.txt', **kw)
    whole = whole_matrix(tmp_path_factory, lines, filters)
    if isinstance(got, EBirdDataError): return                                   # refused, with a message
    if got == whole and not said: return                                         # harmless damage (e.g. in an unread field)
    assert said, f'{damage.__name__} at line {i + 1} changed the matrix without a word'
    if damage in (latin1, bad_date): return                                      # reported: invalid UTF-8 / a missing date
    if damage is header_again: assert got == whole; return                       # the repeated header is skipped, nothing else
    if got == matrix_of(tmp, 'without.txt', lines[:i] + lines[i + 1:], **kw): return
    # or the cleaning left out the whole checklist that lost the row (ReadInfo.damaged_checklists), which the warning names
    k = fields(lines[0]).index(b'SAMPLING EVENT IDENTIFIER')
    cid = fields(lines[i])[k]
    assert any(cid.decode() in m for m in said), f'{damage.__name__} at line {i + 1}: the matrix is not that of the other rows'
    rest = tuple(l for l in lines if fields(l)[k] != cid)
    assert got == matrix_of(tmp, 'without.txt', rest, **kw), f'{damage.__name__} at line {i + 1}: reported, but the matrix is neither that of the other rows nor that without its checklist'


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(cut=st.integers(0, 10**9), filters=st.booleans())
def test_cut_file(lines, tmp_path_factory, cut, filters):
    "A file cut anywhere (an incomplete download) gives the matrix of its complete lines, or says it was cut."
    tmp = tmp_path_factory.mktemp('c')
    data = b''.join(lines)
    k = len(lines[0]) + cut % (len(data) - len(lines[0]))
    (tmp / 'cut.txt').write_bytes(data[:k])
    got, said = build(tmp / 'cut.txt', apply_quality_filters=filters)
    if isinstance(got, EBirdDataError): return
    n_whole = data[:k].count(b'\n')
    complete = matrix_of(tmp, 'complete.txt', lines[:n_whole], apply_quality_filters=filters)
    with_last = matrix_of(tmp, 'last.txt', lines[:n_whole + 1], apply_quality_filters=filters)
    if got == complete: return
    if got == with_last and not data[:k].endswith(b'\n'): return
    # or the checklist whose row was cut is left out whole (issue 18: a cut checklist is never kept as complete), and named
    i = fields(lines[0]).index(b'SAMPLING EVENT IDENTIFIER')
    cid = fields(lines[n_whole])[i]
    assert any(cid.decode() in m for m in said), 'a cut file gave neither the matrix of its complete lines nor of its last line'
    rest = tuple(l for l in lines[:n_whole] if fields(l)[i] != cid)
    assert got == matrix_of(tmp, 'rest.txt', lines[:1] + rest[1:], apply_quality_filters=filters), 'the cut checklist was named, but the matrix is not that of the other checklists'
    # (a line cut in its last fields, after every column the builder reads, is a whole row to the builder)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(damage=st.sampled_from([lost_tab, extra_tab, blank_id]), i=st.integers(1, 10_000), j=st.integers(0, 10_000))
def test_quick_start_path(lines, tmp_path_factory, damage, i, j):
    "The Quick Start path (load, then build from the DataFrame) skips the same rows and gives the same matrix as the path."
    tmp = tmp_path_factory.mktemp('q')
    i = 1 + i % (len(lines) - 1)
    p = tmp / 'bad.txt'
    p.write_bytes(b''.join(damage(lines, i, j)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', EBirdDataWarning)
        try: by_path = build_species_matrix(p)
        except EBirdDataError: return
        df = load_ebird_data(p)
        m, species = create_species_matrix(df)
    assert as_tuple(m) == as_tuple(by_path.matrix) and species == by_path.species
    assert m.attrs['cleaning_report'] == by_path.matrix.attrs['cleaning_report']


def test_whole_file_in_utf16(lines, tmp_path_factory):
    "A file saved as UTF-16 (a spreadsheet's \"Unicode text\", with or without byte-order mark) gives the matrix of the UTF-8 file."
    tmp = tmp_path_factory.mktemp('u')
    text = b''.join(lines).decode('utf-8')
    for codec in ('utf-16', 'utf-16-le', 'utf-16-be'):
        p = tmp / f'{codec}.txt'
        p.write_bytes(text.encode(codec))
        assert build(p) == (whole_matrix(tmp_path_factory, lines, True), []), codec
