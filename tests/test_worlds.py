"Generator worlds of issue 21: a place signal that can be made subtle (today's world unchanged), and the effort probe."
import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

from ebird_vae.data import build_species_matrix
from ebird_vae.ebd.synthetic import SAMPLE_CHECKLISTS, SAMPLE_CHUNK, SAMPLE_SEED, write_ebd
from ebird_vae.synthetic import sample_path


def _md5(path):
    with gzip.open(path, 'rb') as f: return hashlib.md5(f.read()).hexdigest()


def test_place_signal_one_writes_the_bundled_sample_byte_for_byte(tmp_path):
    out = tmp_path / 'sample.txt.gz'
    write_ebd(out, n_checklists=SAMPLE_CHECKLISTS, seed=SAMPLE_SEED, chunk_checklists=SAMPLE_CHUNK, place_signal=1.0)
    assert _md5(out) == _md5(sample_path())


def _county_probe_on_pca(path):
    "Accuracy of a logistic county probe on PCA-16 of the presence vectors, locality-grouped split, and the majority floor."
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupShuffleSplit
    sm = build_species_matrix(path)
    X, y, g = sm.matrix.to_numpy(np.float32), sm.checklists['county'].astype(str).to_numpy(), sm.checklists['locality_id'].to_numpy()
    tr, te = next(GroupShuffleSplit(1, test_size=0.3, random_state=0).split(X, y, g))
    F = PCA(16, random_state=0).fit(X[tr]).transform(X)
    acc = LogisticRegression(max_iter=2000).fit(F[tr], y[tr]).score(F[te], y[te])
    return acc, (y[te] == pd.Series(y[tr]).mode()[0]).mean()


@pytest.fixture(scope='module')
def probes(tmp_path_factory):
    d = tmp_path_factory.mktemp('worlds')
    out = {}
    for signal in (1.0, 0.1):
        write_ebd(d / f'w{signal}.txt', n_checklists=2500, seed=3, place_signal=signal)
        out[signal] = _county_probe_on_pca(d / f'w{signal}.txt')
    return out


def test_a_subtle_place_world_makes_counties_harder_to_tell_apart(probes):
    (today, floor1), (subtle, floor01) = probes[1.0], probes[0.1]
    assert today - subtle > 0.05, (today, subtle)
    assert subtle >= floor01 - 0.02     # still a world with places: not below the majority floor


def test_place_signal_outside_zero_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match='between 0 and 1'):
        write_ebd(tmp_path / 'x.txt', n_checklists=10, place_signal=2.0)


def _checklists(n=300, seed=0):
    rng = np.random.default_rng(seed)
    dur = rng.lognormal(np.log(45), .8, n).round()
    dur[:20] = np.nan                                               # incidental checklists: no duration
    n_species = rng.poisson(5 + 3 * np.log1p(np.nan_to_num(dur, nan=10)))
    return pd.DataFrame(dict(duration_minutes=dur, n_species=n_species, locality_id=[f'L{i % 40}' for i in range(n)]))


def test_effort_probe_finds_effort_in_an_embedding_that_carries_it_and_none_in_noise():
    from ebird_vae.evaluation import effort_probe
    ck = _checklists()
    rng = np.random.default_rng(1)
    carries = np.c_[np.log1p(ck.duration_minutes.fillna(10)), ck.n_species, rng.normal(size=(len(ck), 14))]
    r2 = effort_probe(carries, ck)
    assert list(r2.index) == ['log_duration', 'species_count']
    assert r2['log_duration'] > 0.95 and r2['species_count'] > 0.95
    assert (effort_probe(rng.normal(size=(len(ck), 16)), ck) < 0.05).all()


def test_effort_probe_folds_are_grouped_by_locality():
    "A feature that only names the locality predicts nothing on localities it never saw (an ungrouped split would)."
    from ebird_vae.evaluation import effort_probe
    ck = _checklists()
    site_mean = ck.groupby('locality_id').n_species.transform('mean').to_numpy()
    ck = ck.assign(n_species=site_mean.round())                     # effort that is all site
    one_hot = pd.get_dummies(ck.locality_id).to_numpy(np.float64)
    assert effort_probe(one_hot, ck)['species_count'] < 0.05


def test_effort_probe_names_what_is_missing():
    from ebird_vae.ebd.schema import EBirdDataError
    from ebird_vae.evaluation import effort_probe
    ck = _checklists()
    with pytest.raises(EBirdDataError, match="n_species"): effort_probe(np.zeros((len(ck), 2)), ck.drop(columns='n_species'))
    with pytest.raises(EBirdDataError, match='embedded rows'): effort_probe(np.zeros((5, 2)), ck)
