"""The matrix stays sparse from the file to the batches (issue 22, parts 1 and 2).

The builder never allocates a checklists x taxa array (a proxy for numpy in the cleaning module refuses one), the
`SpeciesMatrix` holds a CSR matrix and builds its dense `.matrix` only when asked, and the datasets and loaders made
from a CSR matrix or a `SpeciesMatrix` densify one batch at a time (scipy's `toarray` is refused while they run), with the
same split and batches as the dense matrix for the same seed.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch

import ebird_vae.ebd.cleaning as cleaning
from ebird_vae.data import SpeciesDataset, create_dataloaders, split_train_val
from ebird_vae.ebd import build_species_matrix, create_species_matrix
from ebird_vae.ebd.synthetic import write_ebd


@pytest.fixture(scope='module')
def path(tmp_path_factory):
    p = tmp_path_factory.mktemp('sparse') / 'ebd.txt'
    write_ebd(p, n_checklists=600, seed=7)
    return p


def quiet(f, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return f(*a, **kw)


class _NoDenseNumpy:
    "numpy, except that a 2-d array of at least `limit` cells is refused (the dense checklists x taxa matrix)."
    def __init__(self, limit): self.limit = limit
    def __getattr__(self, name):
        f = getattr(np, name)
        if name not in ('zeros', 'empty', 'ones', 'full', 'zeros_like'): return f
        def guarded(shape, *a, **kw):
            dims = np.shape(shape) if name == 'zeros_like' else np.atleast_1d(shape)
            if len(dims) == 2 and int(np.prod(dims)) >= self.limit: raise MemoryError(f'np.{name}({shape}): a dense checklists x taxa array')
            return f(shape, *a, **kw)
        return guarded


@pytest.mark.parametrize('kw', [{}, dict(min_species_observations=3, min_checklist_species=2), dict(collapse_groups=False),
                                dict(species=['House Crow', 'Black Kite', 'Not A Bird'])])
def test_builder_never_allocates_checklists_x_taxa(path, kw, monkeypatch):
    ref = quiet(build_species_matrix, path, **kw)
    n, m = ref.matrix.shape
    monkeypatch.setattr(cleaning, 'np', _NoDenseNumpy(min(n * m, n * 50)))
    sm = quiet(build_species_matrix, path, **kw)
    monkeypatch.undo()
    assert scipy.sparse.isspmatrix_csr(sm.X) and sm.X.dtype == np.uint8 and sm._dense is None   # (the dense view not built)
    pd.testing.assert_frame_equal(sm.matrix, ref.matrix)
    pd.testing.assert_frame_equal(sm.checklists, ref.checklists)
    assert sm.matrix.attrs['cleaning_report'] == ref.matrix.attrs['cleaning_report']


def test_dense_view_is_the_csr_and_is_kept(path):
    sm = quiet(build_species_matrix, path)
    assert sm.matrix is sm.matrix and sm.matrix.dtypes.unique().tolist() == [np.uint8]
    np.testing.assert_array_equal(sm.matrix.to_numpy(), sm.X.toarray())
    assert sm.matrix.index.equals(sm.checklists.index) and list(sm.matrix.columns) == sm.species
    assert (sm.checklists['n_species'].to_numpy() == np.diff(sm.X.indptr)).all()
    m, species = quiet(create_species_matrix, path)                       # (the two-value form still returns a DataFrame)
    assert isinstance(m, pd.DataFrame) and species == sm.species and 'cleaning_report' in m.attrs


@pytest.fixture
def no_toarray(monkeypatch):
    "Refuse scipy's densification while the test runs."
    def refuse(self, *a, **kw): raise AssertionError('the whole sparse matrix was made dense')
    return lambda: [monkeypatch.setattr(cls, name, refuse) for cls in (scipy.sparse.csr_matrix, scipy.sparse.coo_matrix, scipy.sparse.csr_array)
                    for name in ('toarray', 'todense')]


@pytest.mark.parametrize('split', ['random', 'locality'])
def test_species_matrix_splits_and_batches_on_its_csr(path, split, no_toarray):
    sm = quiet(build_species_matrix, path)
    dense = split_train_val(sm.matrix.copy(), sm.species, split=split, checklists=sm.checklists, random_seed=3)
    sm = quiet(build_species_matrix, path)                                # (a fresh one: its dense view not built)
    no_toarray()
    tr, va = split_train_val(sm, None, split=split, random_seed=3)
    assert tr.is_sparse and va.is_sparse and sm._dense is None
    assert list(tr.checklist_ids) == list(dense[0].checklist_ids) and list(va.checklist_ids) == list(dense[1].checklist_ids)
    assert tr.split_info == dense[0].split_info
    for ds_s, ds_d, shuffle in ((tr, dense[0], True), (va, dense[1], False)):
        loaders = [create_dataloaders(d, d, batch_size=64)[0 if shuffle else 1] for d in (ds_s, ds_d)]
        torch.manual_seed(0); a = list(loaders[0])
        torch.manual_seed(0); b = list(loaders[1])
        assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_csr_matrix_in_the_dataset_stays_sparse(no_toarray):
    rng = np.random.default_rng(0)
    d = (rng.random((300, 40)) < .1).astype(np.uint8)
    species = [f's{i}' for i in range(40)]
    with pytest.raises(Exception, match='only 0 and 1'):
        SpeciesDataset(scipy.sparse.csr_matrix(d * 2), species)
    no_toarray()
    for X in (scipy.sparse.csr_matrix(d), scipy.sparse.coo_matrix(d.astype(float)), scipy.sparse.csr_array(d)):
        ds = SpeciesDataset(X, species)
        assert ds.is_sparse and len(ds) == 300
        assert torch.equal(ds[[5, 0, 299]], torch.from_numpy(d[[5, 0, 299]]).float())
        assert torch.equal(ds[-1], torch.from_numpy(d[-1]).float()) and torch.equal(ds[10:13], torch.from_numpy(d[10:13]).float())


def test_species_order_of_a_species_matrix(path):
    sm = quiet(build_species_matrix, path)
    rev = sm.species[::-1]
    ds = SpeciesDataset(sm, rev)
    assert ds.is_sparse and torch.equal(ds[[0, 1]], torch.from_numpy(sm.matrix[rev].to_numpy()[[0, 1]]).float())
    with pytest.raises(Exception, match='matrix columns and species differ'):
        SpeciesDataset(sm, sm.species[:-1] + ['Not A Bird'])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_batches_are_made_on_the_device(path):
    sm = quiet(build_species_matrix, path)
    tr, _ = split_train_val(sm, None, random_seed=1)
    want = tr[[3, 1, 2]]
    tr.to('cuda')
    got = tr[[3, 1, 2]]
    assert got.device.type == 'cuda' and torch.equal(got.cpu(), want)


@pytest.fixture
def no_whole_toarray(monkeypatch):
    "Refuse making more than `rows` rows of a sparse matrix dense at once, and the `SpeciesMatrix`'s dense view, while the test runs."
    from ebird_vae.ebd import SpeciesMatrix
    def arm(rows):
        for cls in (scipy.sparse.csr_matrix, scipy.sparse.coo_matrix, scipy.sparse.csr_array):
            for name in ('toarray', 'todense'):
                def guarded(self, *a, _f=getattr(cls, name), **kw):
                    if self.shape[0] > rows: raise AssertionError(f'{self.shape[0]:,} rows of a sparse matrix were made dense at once')
                    return _f(self, *a, **kw)
                monkeypatch.setattr(cls, name, guarded)
        monkeypatch.setattr(SpeciesMatrix, 'matrix', property(lambda self: pytest.fail('the dense view of the SpeciesMatrix was built')))
    return arm


def test_embedding_a_species_matrix_densifies_one_batch_at_a_time(path, no_whole_toarray):
    "Issue 22: `ChecklistEmbedder.matrix` keeps a `SpeciesMatrix` sparse and `embed` makes one batch dense at a time, same numbers."
    from ebird_vae.inference import ChecklistEmbedder
    from ebird_vae.models import VariationalAutoencoder
    sm = quiet(build_species_matrix, path)
    torch.manual_seed(0)
    emb = ChecklistEmbedder(VariationalAutoencoder(len(sm.species), latent_dimension=4, hidden_dimension=16), sm.species[::-1], batch_size=64)
    want, want_s = emb.embed(sm.matrix), emb.surprise(sm.matrix)       # (through the dense DataFrame)
    sm = quiet(build_species_matrix, path)                                # (a fresh one: its dense view not built)
    assert len(sm) > 3 * 64
    no_whole_toarray(64)
    X, ids = emb.matrix(sm)
    assert scipy.sparse.issparse(X) and X.shape == (len(sm), len(sm.species)) and list(ids) == list(sm.checklists.index)
    got = emb.embed(sm)
    pd.testing.assert_frame_equal(got, want, atol=1e-6, rtol=1e-5)
    pd.testing.assert_frame_equal(emb.surprise(sm), want_s, atol=1e-5, rtol=1e-5)
    assert not emb.checklist_metadata(sm).no_known_species.any() and sm._dense is None
