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
