"""The reader's cases of issue 18: UTF-16 and .tar.gz inputs, CR-only line ends, `nrows` that never keeps a cut
checklist, the ids of checklists that lost a row, real calendar dates, and errors that name only what the caller can do.
Every file is written by the project's own generator/writer: no real eBird records."""
import io
import tarfile
import warnings
import zipfile
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ebird_vae.reader import EBirdDataError, EBirdDataWarning, ebd_text, find_ebd, load_ebird_data, write_text
from ebird_vae.synthetic import write_ebd
from ebird_vae.ebd import build_species_matrix

BASIC = [('S1', ['Indian Peafowl', 'House Crow', 'Common Myna']), ('S2', ['House Crow', 'Little Egret']),
         ('S3', ['Common Myna', 'Indian Peafowl', 'Little Egret', 'House Crow'])]


@lru_cache(1)
def generated(tmp_dir) -> bytes:
    "A small valid file written by the generator (about 25 checklists), as bytes."
    write_ebd(tmp_dir / 'gen.txt', n_checklists=25, seed=3)
    return (tmp_dir / 'gen.txt').read_bytes()


@pytest.fixture(scope='module')
def gen(tmp_path_factory): return generated(tmp_path_factory.mktemp('gen'))


def quiet(f, *a, **kw):
    "(`f(*a, **kw)`, the EBirdDataWarning messages it gave)."
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        out = f(*a, **kw)
    return out, [str(w.message) for w in ws if issubclass(w.category, EBirdDataWarning)]


def rows(df): return df.astype(str).to_dict('list')
def as_tuple(m):
    m = m.sort_index().sort_index(axis=1)
    return (tuple(m.index), tuple(m.columns), m.to_numpy().tobytes())


# 1. UTF-16 ("Unicode text" from a spreadsheet program): read as the same rows
@pytest.mark.parametrize('codec,bom', [('utf-16-le', True), ('utf-16-be', True), ('utf-16-le', False), ('utf-16-be', False)])
def test_utf16(gen, tmp_path, codec, bom):
    text = gen.decode('utf-8').replace('\n', '\r\n')           # (spreadsheet programs also write Windows line ends)
    data = (b'\xff\xfe' if codec.endswith('le') else b'\xfe\xff') * bom + text.encode(codec)
    p = write_text(tmp_path / 'unicode.txt', data)
    ref = write_text(tmp_path / 'utf8.txt', gen)
    got, said = quiet(load_ebird_data, p)
    assert rows(got) == rows(load_ebird_data(ref)) and not said
    assert as_tuple(build_species_matrix(p).matrix) == as_tuple(build_species_matrix(ref).matrix)


def test_utf16_inside_zip_and_gzip(tmp_path):
    text = ebd_text(BASIC, release='2017custom').replace('Little Egret', 'Little Égret')
    ref = load_ebird_data(write_text(tmp_path / 'ref.txt', text))
    with zipfile.ZipFile(tmp_path / 'u.zip', 'w') as z: z.writestr('ebd.txt', text.encode('utf-16'))
    write_text(tmp_path / 'u.txt.gz', text.encode('utf-16'))
    for f in ('u.zip', 'u.txt.gz'): assert rows(load_ebird_data(tmp_path / f)) == rows(ref)
    assert 'Little Égret' in set(ref['COMMON NAME'])


def test_utf16_bad_character_reported(tmp_path):
    "A UTF-16 value that is no character (a lone surrogate) is reported and replaced, like an invalid UTF-8 byte."
    data = ebd_text(BASIC).encode('utf-16-le').replace('Egret'.encode('utf-16-le'), b'\x00\xd8' + 'gret'.encode('utf-16-le'))
    got, said = quiet(load_ebird_data, write_text(tmp_path / 'bad.txt', data))
    assert '\ufffdgret' in ' '.join(got['COMMON NAME'].astype(str)) and any('invalid UTF-8' in m for m in said)
    assert len(got) == 9


# 2. .tar.gz / .tgz
@pytest.mark.parametrize('name', ['ebd.tar.gz', 'ebd.tgz'])
def test_tar_gz(gen, tmp_path, name):
    ref = write_text(tmp_path / 'ref.txt', gen)
    with tarfile.open(tmp_path / name, 'w:gz') as t:
        for n, data in [('README.txt', b'docs\n'), ('ebd_IN-KL_relOct-2025.txt', gen)]:
            ti = tarfile.TarInfo(n); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    assert rows(load_ebird_data(tmp_path / name)) == rows(load_ebird_data(ref))
    assert rows(load_ebird_data(f'{tmp_path / name}:ebd_IN-KL_relOct-2025.txt')) == rows(load_ebird_data(ref))
    assert as_tuple(build_species_matrix(tmp_path / name).matrix) == as_tuple(build_species_matrix(ref).matrix)


# 3. CR-only line ends (old Mac)
def test_cr_only(gen, tmp_path):
    ref = write_text(tmp_path / 'ref.txt', gen)
    p = write_text(tmp_path / 'mac.txt', gen.replace(b'\n', b'\r'))
    got, said = quiet(load_ebird_data, p)
    assert rows(got) == rows(load_ebird_data(ref)) and not said
    assert as_tuple(build_species_matrix(p).matrix) == as_tuple(build_species_matrix(ref).matrix)
    for bs in (1 << 12, 1 << 14):   # several byte ranges, cut at CR line starts
        assert as_tuple(build_species_matrix(p, block_size=bs).matrix) == as_tuple(build_species_matrix(ref).matrix)
    assert rows(load_ebird_data(write_text(tmp_path / 'mac.txt.gz', gen.replace(b'\n', b'\r')))) == rows(load_ebird_data(ref))


def test_cr_only_cut_last_line(gen, tmp_path):
    data = gen.replace(b'\n', b'\r')
    p = write_text(tmp_path / 'cut.txt', data[:-40])
    full = gen.count(b'\n') - 1
    got, said = quiet(load_ebird_data, p)
    assert len(got) == full - 1 and any('truncated' in m for m in said)


# 4. nrows never keeps a cut checklist: it reads on to the end of the checklist its last row belongs to
def checklists(df) -> dict:
    ids = df['SAMPLING EVENT IDENTIFIER'].astype(str)
    return {k: sorted(map(tuple, g.astype(str).to_numpy().tolist())) for k, g in df.groupby(ids, sort=False, observed=True)}


@lru_cache(4)
def full_file(tmp_dir, quirk):
    "(path, checklists of the whole file, its ids row by row) of the generated file, plain or gzipped."
    p = write_text(tmp_dir / ('nrows.txt.gz' if quirk == 'gz' else 'nrows.txt'), generated(tmp_dir))
    df = load_ebird_data(p)
    return p, checklists(df), df['SAMPLING EVENT IDENTIFIER'].astype(str).tolist()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(n=st.integers(1, 10_000), quirk=st.sampled_from(['plain', 'gz']), bs=st.sampled_from([1 << 12, 1 << 21]))
def test_nrows_keeps_whole_checklists(tmp_path_factory, n, quirk, bs):
    p, whole, ids = full_file(tmp_path_factory.getbasetemp(), quirk)
    n = 1 + n % len(ids)
    got = load_ebird_data(p, nrows=n, block_size=bs)
    assert len(got) >= n
    kept = checklists(got)
    for k, v in kept.items(): assert v == whole[k], f'nrows={n}: checklist {k} is not its full-file rows'
    assert list(kept) == list(dict.fromkeys(ids[:n]))                 # the checklists of the first n rows, in order, no more


def test_nrows_cut_in_the_middle(tmp_path):
    big = [('S1', ['Indian Peafowl', 'House Crow']), ('S2', [f'Bird {i}' for i in range(36)]), ('S3', ['Common Myna'])]
    p = write_text(tmp_path / 'b.txt', ebd_text(big))
    got = load_ebird_data(p, nrows=20)
    assert list(got['SAMPLING EVENT IDENTIFIER'].astype(str).unique()) == ['S1', 'S2'] and len(got) == 38
    got = load_ebird_data(p, nrows=2, columns=['COMMON NAME'])                     # the id is read to find the boundary, not returned
    assert list(got.columns) == ['COMMON NAME'] and len(got) == 2
    assert len(load_ebird_data(p, nrows=3, columns=['COMMON NAME'])) == 38


def test_nrows_with_repaired_rows(tmp_path):
    "Short rows (repaired by padding) keep their place in the file, so the boundary is found in file order."
    big = [('S1', ['Indian Peafowl', 'House Crow']), ('S2', [f'Bird {i}' for i in range(36)]), ('S3', ['Common Myna'])]
    text = ebd_text(big, short_rows=True)
    lines = text.splitlines(keepends=True)
    full = ebd_text(big).splitlines(keepends=True)
    mixed = ''.join(lines[i] if i % 3 == 0 else full[i] for i in range(len(lines)))   # every third row short
    p = write_text(tmp_path / 'mixed.txt', mixed)
    whole = checklists(load_ebird_data(p))
    for n in (1, 2, 3, 10, 30, 38, 39):
        got = load_ebird_data(p, nrows=n, block_size=1 << 12)
        for k, v in checklists(got).items(): assert v == whole[k], (n, k)


def test_nrows_rows_not_together(tmp_path):
    "A file whose checklists' rows are not together cannot be cut into whole checklists: refused, saying what to do."
    p = write_text(tmp_path / 'apart.txt', ebd_text([('S1', ['House Crow']), ('S2', ['Common Myna']), ('S1', ['Little Egret']),
                                                      ('S3', ['Indian Peafowl'])]))
    with pytest.raises(EBirdDataError, match='not together'): load_ebird_data(p, nrows=2)
    assert len(load_ebird_data(p)) == 4


# 5. rows refused by a check: the ids of the checklists that lost them
def test_damaged_checklists(tmp_path):
    text = ebd_text(BASIC)
    lines = text.splitlines(keepends=True)
    lines[5] = lines[5].replace('\tspecies\t', '\tP22\t')                        # a row of S2 with a shifted CATEGORY
    cells = lines[7].split('\t'); del cells[3]; lines[7] = '\t'.join(cells)        # a row of S3 with a lost field
    p = write_text(tmp_path / 'damaged.txt', ''.join(lines))
    df, said = quiet(load_ebird_data, p)
    assert df.attrs['read_info']['damaged_checklists'] == ['S2', 'S3']   # (a sorted list: attrs stay JSON)
    assert any('S2' in m and 'S3' in m and 'damaged_checklists' in m for m in said)
    for bs in (1 << 12, 1 << 21):
        (_, said) = quiet(build_species_matrix, p, block_size=bs)
        assert any('S2' in m and 'S3' in m for m in said)
    df, _ = quiet(load_ebird_data, write_text(tmp_path / 'damaged.txt.gz', ''.join(lines)))
    assert df.attrs['read_info']['damaged_checklists'] == ['S2', 'S3']   # (a sorted list: attrs stay JSON)


# 6. dates: no day a month does not have, no year pandas cannot hold
def test_impossible_dates(tmp_path):
    big = [('S1', ['House Crow'], {'date': '2020-02-30'}), ('S2', ['Common Myna'], {'date': '1600-05-01'}),
           ('S3', ['Little Egret'], {'date': '9999-01-01'}), ('S4', ['House Crow'], {'date': '2021-04-30'})]
    p = write_text(tmp_path / 'dates.txt', ebd_text(big))
    df, said = quiet(load_ebird_data, p)
    assert df['OBSERVATION DATE'].isna().tolist() == [True, True, True, False]
    assert str(df['OBSERVATION DATE'].iloc[3].date()) == '2021-04-30'
    msg = next(m for m in said if 'OBSERVATION DATE' in m)
    assert "'2020-02-30'" in msg and '3 value' in msg and 'rows 0, 1, 2' in msg


# 7. errors name only what the caller can do
def test_long_row_message(tmp_path):
    long = ebd_text([('S1', ['House Crow'], {'comment': 'x' * (5 << 20)}), ('S2', ['Common Myna'])])
    p = write_text(tmp_path / 'long.txt', long)
    with pytest.raises(EBirdDataError) as e: load_ebird_data(p)
    assert 'block_size' not in str(e.value) and 'download it again' in str(e.value).lower()
    with pytest.raises(EBirdDataError) as e: load_ebird_data(p, block_size=1 << 16)
    assert 'block_size' in str(e.value)


def test_two_ebds_in_an_archive_message(tmp_path):
    with zipfile.ZipFile(tmp_path / 'two.zip', 'w') as z:
        z.writestr('a/ebd_IN-KL_relOct-2025.txt', ebd_text(BASIC)); z.writestr('b/ebd_IN-TN_relOct-2025.txt', ebd_text(BASIC[:1]))
    with pytest.raises(EBirdDataError, match='(?i)extract'): find_ebd(tmp_path / 'two.zip')


# 8. every error an EBirdDataError naming the problem and the fix
def test_bad_arguments(tmp_path):
    p = write_text(tmp_path / 'ok.txt', ebd_text(BASIC))
    for kw, msg in [(dict(block_size=0), 'block_size'), (dict(block_size='big'), 'block_size'), (dict(columns=5), 'columns'),
                    (dict(columns=[5]), 'columns')]:
        with pytest.raises(EBirdDataError, match=msg): load_ebird_data(p, **kw)
    with pytest.raises(EBirdDataError, match='path'): load_ebird_data(5)
    z = write_text(tmp_path / 'not_really.zip', ebd_text(BASIC))                    # named .zip, but plain text
    with pytest.raises(EBirdDataError, match='give not_really.zip itself'): load_ebird_data(f'{z}:ebd.txt')


def test_unreadable_file(tmp_path, monkeypatch):
    "A file the user may not read (simulated, so that it also fails as root): an EBirdDataError saying so, not a PermissionError."
    import builtins
    import ebird_vae.reader as reader
    p = write_text(tmp_path / 'secret.txt', ebd_text(BASIC))
    def no(f, *a, **kw):
        if str(f) == str(p): raise PermissionError(13, 'Permission denied', str(f))
        return builtins.open(f, *a, **kw)
    monkeypatch.setattr(reader, 'open', no, raising=False)
    with pytest.raises(EBirdDataError, match='cannot be read .Permission denied.: check its permissions'): load_ebird_data(p)
