"The evaluation's baselines from a CSR matrix (issue 22 part 1, as far as the evaluation's baselines go): the same numbers as from the dense matrix, and never the checklists x species matrix built densely."
import tracemalloc

import numpy as np
import pytest
from scipy import sparse

from ebird_vae.evaluation import (EASEBaseline, ItemKNNBaseline, PopularityBaseline, bernoulli_nll, context_prevalence,
                                  multinomial_nll, prevalence, select_ease_l2)

def _csr(n, S, per_row, seed=0):
    "A random 0/1 CSR matrix of `n` checklists with about `per_row` of `S` species each."
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), per_row)
    cols = (rng.zipf(1.3, n * per_row) - 1) % S   # some species common, most rare
    X = sparse.csr_matrix((np.ones(len(rows), np.uint8), (rows, cols)), shape=(n, S))
    X.data[:] = 1
    return X

def test_sparse_and_dense_baselines_agree():
    X = _csr(600, 40, 6)
    D = X.toarray()
    ctx = np.arange(600) % 9
    np.testing.assert_allclose(prevalence(X), prevalence(D))
    np.testing.assert_allclose(bernoulli_nll(X[:50], prevalence(X)), bernoulli_nll(D[:50], prevalence(D)))
    np.testing.assert_allclose(multinomial_nll(X[:50], prevalence(X)), multinomial_nll(D[:50], prevalence(D)))
    np.testing.assert_allclose(context_prevalence(X, ctx, [1, 4, 99]), context_prevalence(D, ctx, [1, 4, 99]))
    for b in [PopularityBaseline(), ItemKNNBaseline(5), EASEBaseline(30.0)]:
        np.testing.assert_allclose(b.fit(X).scores(X[:20]), b.fit(D).scores(D[:20]), rtol=1e-9, atol=1e-12)
    assert select_ease_l2(X, groups=np.arange(600) // 3)[0] == select_ease_l2(D, groups=np.arange(600) // 3)[0]

def test_fitting_from_csr_never_allocates_the_dense_matrix():
    n, S = 100_000, 1_000
    X = _csr(n, S, 8)
    dense_uint8 = n * S          # bytes of the matrix as dense uint8 (float64: 8 times more)
    tracemalloc.start()
    try:
        prevalence(X)
        context_prevalence(X, np.arange(n) % 50, np.arange(100) % 50)
        EASEBaseline(100.0).fit(X).scores(X[:100])
        ItemKNNBaseline(50).fit(X).scores(X[:100])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < dense_uint8 / 2, f'peak {peak / 1e6:.0f} MB, the dense uint8 matrix {dense_uint8 / 1e6:.0f} MB'



# `evaluate_model` from CSR (issue 22 part 1, the evaluation): the same report as from the dense matrix, and the
# whole training matrix never made dense (the held-out checklists one batch at a time).
import io
import warnings

import pandas as pd
import scipy.sparse
import torch

from ebird_vae.evaluation import checklist_labels, evaluate_model
from ebird_vae.inference import ChecklistEmbedder


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A generator file's `SpeciesMatrix`, its locality split (as `SpeciesDataset`s), probe labels and an untrained seeded VAE."
    from ebird_vae.data import split_train_val
    from ebird_vae.ebd import build_species_matrix
    from ebird_vae.ebd.synthetic import write_ebd
    from ebird_vae.models import VariationalAutoencoder
    p = tmp_path_factory.mktemp('evalsparse') / 'ebd.txt'
    write_ebd(p, n_checklists=700, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sm = build_species_matrix(p)
        tr, te = split_train_val(sm, None, split='locality', random_seed=42)
    meta, _ = checklist_labels(sm.checklists, train_ids=tr.checklist_ids)
    meta['county_season'] = meta.county.astype(str) + '|' + meta.season.astype(str)
    torch.manual_seed(0)
    return dict(path=p, sm=sm, tr=tr, te=te, meta=meta, vae=VariationalAutoencoder(len(sm.species), latent_dimension=4, hidden_dimension=16))

_OPTIONS = dict(iwae_samples=3, vae_samples=2, forest_trees=0, batch_size=32, progress=False)

def _csv(report) -> str:
    "The report as `ebird-vae evaluate` writes report.csv."
    buf = io.StringIO()
    report.to_csv(buf, index=False)
    return buf.getvalue()

def _rows(world, ids) -> scipy.sparse.csr_matrix:
    return world['sm'].X.tocsr()[pd.Index(world['sm'].checklists.index).get_indexer(ids)]

def test_evaluate_model_from_sparse_gives_the_dense_report(world):
    "DataFrames, scipy CSR rows and the split's sparse `SpeciesDataset`s give one report.csv, value for value."
    sm, tr, te, meta, vae = world['sm'], world['tr'], world['te'], world['meta'], world['vae']
    assert tr.is_sparse and len(te) > 3 * 32
    train_df, test_df = sm.matrix.loc[tr.checklist_ids], sm.matrix.loc[te.checklist_ids]
    full = dict(_OPTIONS, metadata=meta, context_column='county_season')
    dense = _csv(evaluate_model(vae, train_df, test_df, **full))
    assert 'context_prevalence' in dense and 'county_accuracy_logistic' in dense and 'calibration' in dense
    assert _csv(evaluate_model(vae, tr, te, **full)) == dense
    species = [str(s) for s in sm.species]
    emb = ChecklistEmbedder(vae, species, batch_size=32)   # arrays: in the model's order, no ids (so no metadata)
    assert (_csv(evaluate_model(emb, _rows(world, tr.checklist_ids), _rows(world, te.checklist_ids), **_OPTIONS))
            == _csv(evaluate_model(emb, train_df[species].to_numpy(), test_df[species].to_numpy(), **_OPTIONS)))

@pytest.fixture
def no_dense(monkeypatch):
    "Refuse making more than `rows` rows of a checklists x `width` sparse matrix dense at once (as in tests/test_sparse.py); list what was."
    made = []
    def arm(rows, width):
        for cls in (scipy.sparse.csr_matrix, scipy.sparse.coo_matrix, scipy.sparse.csc_matrix, scipy.sparse.csr_array):
            for name in ('toarray', 'todense'):
                def guarded(self, *a, _f=getattr(cls, name), **kw):
                    if self.shape[1] != width or self.shape[0] == width: return _f(self, *a, **kw)   # (not checklists x species: sklearn's label matrices, EASE's species x species)
                    if self.shape[0] > rows: raise AssertionError(f'{self.shape[0]:,} rows of a sparse matrix were made dense at once')
                    made.append(self.shape[0])
                    return _f(self, *a, **kw)
                monkeypatch.setattr(cls, name, guarded)
        return made
    return arm

def test_evaluate_model_never_makes_the_training_matrix_dense(world, no_dense):
    "From CSR, nothing larger than one batch (32 checklists) is made dense: the training matrix never, the held-out set batch by batch."
    tr, te, vae = world['tr'], world['te'], world['vae']
    X_tr, X_te = _rows(world, tr.checklist_ids), _rows(world, te.checklist_ids)
    want = _csv(evaluate_model(vae, X_tr.toarray(), X_te.toarray(), ease_l2=100.0, **_OPTIONS))
    made = no_dense(32, X_tr.shape[1])
    got = _csv(evaluate_model(vae, X_tr, X_te, ease_l2=100.0, **_OPTIONS))
    assert got == want and made and max(made) <= 32
    with pytest.raises(AssertionError, match='rows of a sparse matrix were made dense'): X_tr.toarray()   # (the guard is armed)

def test_evaluate_command_never_builds_the_dense_matrix(world, tmp_path, monkeypatch):
    "`ebird-vae evaluate` hands the cleaned CSR to `evaluate_model`: the `SpeciesMatrix`'s dense view is refused while it runs."
    import contextlib, inspect
    from ebird_vae.data import EBirdPreprocessor
    from ebird_vae.ebd import SpeciesMatrix
    from ebird_vae.evaluation import evaluate_cli
    from ebird_vae.training import save_checkpoint
    sm, vae = world['sm'], world['vae']
    preprocessor = {'params': EBirdPreprocessor().get_params(), 'species': sm.species, 'scientific_names': sm.scientific_names}
    save_checkpoint(vae, None, 1, float('nan'), float('nan'), tmp_path/'m.pt',
                    metadata={'species': sm.species, 'model_config': vae.config, 'preprocessor': preprocessor})
    monkeypatch.setattr(SpeciesMatrix, 'matrix', property(lambda self: pytest.fail('the dense view of the SpeciesMatrix was built')))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        inspect.unwrap(evaluate_cli)(str(tmp_path/'m.pt'), str(world['path']), str(tmp_path/'eval'), iwae_samples=2, probe_labels='', forest_trees=0)
    report = pd.read_csv(tmp_path/'eval'/'report.csv')
    assert {'density', 'completion', 'calibration', 'diagnostics'} <= set(report.section) and report.value.notna().any()
