"""Issue 18, the matrix and dataset cases: a matrix, a species list or an id that is not what it should be is refused with an
`EBirdDataError` that says what to do, never turned into a dataset that is silently different from the matrix. Each test
here fails on the code before the fix (9cf6c30). Data: the project's own generator (`ebird_vae.synthetic.write_ebd`)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from hypothesis import given, settings, strategies as st

from ebird_vae.data import EBirdDataError, SpeciesDataset, build_species_matrix, split_train_val
from ebird_vae.synthetic import write_ebd


@pytest.fixture(scope='module')
def sm(tmp_path_factory):
    "A small species matrix with its checklist metadata, built from a synthetic EBD."
    path = tmp_path_factory.mktemp('data_cases') / 'ebd.txt'
    write_ebd(path, n_checklists=60, seed=5)
    return build_species_matrix(path)


def widths(tr, va): return tr.data.shape[1], va.data.shape[1], len(tr.species), len(va.species)


# 1. A matrix CSV written with index=False: its first species must not become the checklist ids.
def test_csv_without_ids_is_refused(sm, tmp_path):
    sm.matrix.to_csv(tmp_path / 'no_ids.csv', index=False)
    back = pd.read_csv(tmp_path / 'no_ids.csv', index_col=0)
    with pytest.raises(EBirdDataError, match=r'to_csv\(index=False\).*read_species_matrix'):
        split_train_val(back, list(back.columns))
    (sm.matrix * 7).to_csv(tmp_path / 'counts.csv', index=False)                  # (a count matrix: repeated numbers, not 0/1)
    with pytest.raises(EBirdDataError, match=r'to_csv\(index=False\)'):
        split_train_val(pd.read_csv(tmp_path / 'counts.csv', index_col=0), sm.species[1:])


def test_read_species_matrix(sm, tmp_path):
    from ebird_vae.data import read_species_matrix
    sm.matrix.to_csv(tmp_path / 'm.csv')
    sm.matrix.to_parquet(tmp_path / 'm.parquet')
    for name in ('m.csv', 'm.parquet'):
        back = read_species_matrix(tmp_path / name)
        assert back.index.tolist() == sm.matrix.index.tolist() and back.columns.tolist() == sm.species
        assert (back.to_numpy() == sm.matrix.to_numpy()).all()
    sm.matrix.to_csv(tmp_path / 'no_ids.csv', index=False)
    with pytest.raises(EBirdDataError, match=rf"no_ids.csv: the checklist ids are numbers under the name '{sm.species[0]}' \(0/1 or repeated\)"):
        read_species_matrix(tmp_path / 'no_ids.csv')


def test_ids_read_as_a_column_are_refused(sm, tmp_path):
    sm.matrix.to_csv(tmp_path / 'm.csv')
    flat = pd.read_csv(tmp_path / 'm.csv')                                       # (no index_col: the ids are a text column)
    with pytest.raises(EBirdDataError, match=r"columns \['checklist_id'\] hold text.*set_index\('checklist_id'\)"):
        split_train_val(flat, list(flat.columns))


# 2. Repeated column names: refused, by name (the dataset used to be wider than its species list).
def test_repeated_columns_are_refused(sm):
    m = sm.matrix.iloc[:, :3].set_axis(['a', 'a', 'b'], axis=1)
    with pytest.raises(EBirdDataError, match=r"species names occur more than once \(\['a'\]\)"):
        split_train_val(m, ['b', 'a', 'a'])
    with pytest.raises(EBirdDataError, match=r"column names occur more than once \(\['a'\]\)"):
        split_train_val(m, ['a', 'b'])


def test_repeated_ids_are_refused(sm):
    m = sm.matrix.set_axis([sm.matrix.index[1]] + list(sm.matrix.index[1:]))
    with pytest.raises(EBirdDataError, match=rf"checklist ids occur on more than one row \(\['{sm.matrix.index[1]}'\]\)"):
        split_train_val(m, sm.species)


# 3. Repeated matrix ids with split='locality' took another checklist's locality; repeated metadata rows too.
def test_repeated_ids_locality_split(sm):
    ids = list(sm.matrix.index)
    m = sm.matrix.set_axis(ids[:-1] + [ids[0]])                                 # (the last checklist relabelled as the first)
    with pytest.raises(EBirdDataError, match='checklist ids occur on more than one row'):
        split_train_val(m, sm.species, split='locality', checklists=sm.checklists)
    with pytest.raises(EBirdDataError, match='occur on more than one row of `checklists`'):
        split_train_val(sm.matrix, sm.species, split='locality', checklists=pd.concat([sm.checklists.iloc[:1], sm.checklists]))


def test_array_metadata_must_line_up(sm):
    with pytest.raises(EBirdDataError, match='checklists has .* rows for .* matrix rows'):
        split_train_val(sm.matrix.to_numpy(), sm.species, split='locality', checklists=sm.checklists.iloc[1:])


# 4. Fractional indices raise; a boolean mask is a mask (it used to be read as rows 0 and 1).
def test_fractional_indices_raise(sm):
    ds = SpeciesDataset(sm.matrix, sm.species, list(sm.matrix.index))
    for idx in (np.array([0.5]), [0.5], [0, 1.5], torch.tensor([0.5]), 0.5):
        with pytest.raises(EBirdDataError, match='names no row'):
            ds[idx]
    mask = np.zeros(len(ds), bool); mask[[2, 5]] = True
    assert torch.equal(ds[mask], ds[[2, 5]])
    with pytest.raises(EBirdDataError, match='one value per row'):
        ds[mask[:3]]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-50, max_value=50), min_size=1, max_size=5))
def test_float_indices_never_round(xs):
    "Any float row index is refused (a whole float with a hint to convert), never rounded or cut to a row."
    ds = SpeciesDataset(np.eye(60, 3, dtype=np.uint8), ['a', 'b', 'c'])
    with pytest.raises(EBirdDataError, match='row indices must be whole numbers'):
        ds[np.array(xs)]



@settings(max_examples=25, deadline=None)
@given(st.permutations(range(6)), st.integers(0, 5))
def test_columns_follow_the_species_list(order, seed):
    "Whatever the order of a DataFrame's columns, the datasets hold them in the order of the species list, by name (a\n    `SpeciesDataset` used to take them by position)."
    rng = np.random.default_rng(seed)
    species = [f'sp{i}' for i in range(6)]
    m = pd.DataFrame(rng.integers(0, 2, (20, 6)), columns=species, index=[f'S{i}' for i in range(20)])
    tr, va = split_train_val(m[[species[i] for i in order]], species, random_seed=seed)
    whole = SpeciesDataset(m[[species[i] for i in order]], species, list(m.index))
    for ds in (tr, va, whole):
        assert torch.equal(ds.data, torch.tensor(m.loc[list(ds.checklist_ids), species].to_numpy(np.uint8)))
        assert ds.species == species

# 5. A text column: a message naming it, not a failure while formatting the message.
def test_text_column_is_named(sm):
    with_loc = sm.matrix.assign(locality=sm.checklists['locality_id'])
    with pytest.raises(EBirdDataError, match=r"columns \['locality'\] hold text"):
        split_train_val(with_loc, sm.species + ['locality'])
    arr = np.concatenate([sm.matrix.to_numpy().astype(object), sm.checklists[['locality_id']].to_numpy()], axis=1)
    with pytest.raises(EBirdDataError, match=r"cells hold text \(e.g. 'L.*in 1 column\(s\): \['locality'\]"):
        split_train_val(arr, sm.species + ['locality'])


# 6. A scipy sparse matrix (and a torch sparse tensor) is accepted: the same split as the dense matrix.
def test_sparse_matrix_is_accepted(sm):
    dense = split_train_val(sm.matrix.to_numpy(), sm.species, random_seed=3)
    for sparse in (scipy.sparse.csr_matrix(sm.matrix.to_numpy()), scipy.sparse.coo_matrix(sm.matrix.to_numpy()),
                   torch.tensor(sm.matrix.to_numpy()).to_sparse()):
        for a, b in zip(split_train_val(sparse, sm.species, random_seed=3), dense):
            assert torch.equal(a.data, b.data) and list(a.checklist_ids) == list(b.checklist_ids)
    with pytest.raises(EBirdDataError, match='must be 2-d.*not a numpy.ndarray of shape'):
        split_train_val(sm.matrix.to_numpy()[0], sm.species)


# 7. Species lists and ids are checked wherever the data module takes them.
def test_species_and_ids_are_checked(sm):
    m3 = sm.matrix.iloc[:, :3].set_axis(['a', 'b', 'c'], axis=1)
    with pytest.raises(EBirdDataError, match='a string is not a list of names'):
        split_train_val(m3, 'abc')
    with pytest.raises(EBirdDataError, match='a string is not a list of names'):
        SpeciesDataset(m3.to_numpy(), 'abc')
    with pytest.raises(EBirdDataError, match='2 species names for a matrix of 3 columns'):
        SpeciesDataset(m3.to_numpy(), ['a', 'b'])
    with pytest.raises(EBirdDataError, match='checklist ids for .* matrix rows'):
        SpeciesDataset(m3.to_numpy(), ['a', 'b', 'c'], ['S1'])
    with pytest.raises(EBirdDataError, match="checklist ids occur on more than one row"):
        SpeciesDataset(m3.to_numpy()[:2], ['a', 'b', 'c'], ['S1', 'S1'])
    with pytest.raises(EBirdDataError, match='must be a list .* not a set'):
        SpeciesDataset(m3.to_numpy(), {'a', 'b', 'c'})


def test_dataset_dataframe_columns_by_name(sm):
    "A DataFrame's columns are matched to the species list by name (they used to be taken by position)."
    sp = sm.species[:3]
    ds = SpeciesDataset(sm.matrix[sp[::-1]], sp)
    assert torch.equal(ds.data, torch.tensor(sm.matrix[sp].to_numpy()))



def test_split_options_are_checked(sm):
    "A negative block size used to give mirrored blocks silently, a text seed a numpy TypeError."
    for kw, msg in ((dict(block_size_km=-5), 'block_size_km must be a positive number of kilometres'),
                    (dict(block_size_km='10'), 'block_size_km must be a positive number'),
                    (dict(random_seed='42'), 'random_seed must be a whole number >= 0')):
        with pytest.raises(EBirdDataError, match=msg):
            split_train_val(sm, None, split='spatial', **kw)

# 8. On the lowest supported pandas (2.0, see tools/min_versions.sh) the build must not warn about its own code.

def test_build_gives_no_pandas_warning(tmp_path):
    import warnings
    write_ebd(tmp_path / 'ebd.txt', n_checklists=30, seed=2)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        sm = build_species_matrix(tmp_path / 'ebd.txt', min_species_observations=3, min_checklist_species=3)   # (some rows dropped)
        split_train_val(sm, None, split='locality')
    assert [str(w.message) for w in ws if w.category.__module__.startswith('pandas')] == []
