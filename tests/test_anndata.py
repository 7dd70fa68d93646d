"""SpeciesMatrix leaves the package as AnnData (.h5ad) and as Parquet (issue 22, part 3).

The .h5ad tests need the optional package anndata (`pip install anndata`) and are skipped, saying so, without it;
on this machine's Python, pip resolves anndata 0.12, which brings pandas below 3, so these run on the pandas 2 line while
the rest of the suite runs on pandas 3.
"""
import json, sys, warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from ebird_vae.ebd import EBirdDataError, SpeciesMatrix, build_species_matrix, ebd_text, write_text


@pytest.fixture(scope='module')
def sm(tmp_path_factory):
    "A small matrix with a group checklist, a vocabulary species the file lacks, and a report."
    p = write_text(tmp_path_factory.mktemp('ad') / 'ebd.txt', ebd_text([
        ('S1', ['House Crow', 'Common Myna'], {'group': 'G1'}), ('S2', ['House Crow', 'Little Egret'], {'group': 'G1'}),
        ('S3', ['Black Kite', 'House Crow']), ('S4', ['Asian Koel'], {'date': '2021-05-02'})]))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return build_species_matrix(p, species=['House Crow', 'Black Kite', 'Little Egret', 'Common Myna', 'Purple Heron'])


def test_parquet_round_trip(sm, tmp_path):
    back = SpeciesMatrix.from_parquet(sm.to_parquet(tmp_path / 'm.parquet'))
    assert (back.X != sm.X).nnz == 0 and back.X.dtype == np.uint8
    pd.testing.assert_frame_equal(back.matrix, sm.matrix)
    pd.testing.assert_frame_equal(back.checklists, sm.checklists)
    pd.testing.assert_frame_equal(back.report, sm.report)
    assert (back.species, back.scientific_names, back.unknown_species, back.settings) == (sm.species, sm.scientific_names, sm.unknown_species, sm.settings)
    assert back.taxonomic_order[:4] == sm.taxonomic_order[:4] and np.isnan(back.taxonomic_order[4])
    assert back.read_info == sm.read_info
    table = pd.read_parquet(tmp_path / 'm.parquet')                       # (also a plain table: a list of species per checklist)
    assert table.set_index('checklist_id')['species_present'].map(list).to_dict() == {'G1': ['House Crow', 'Little Egret', 'Common Myna'], 'S3': ['House Crow', 'Black Kite'], 'S4': []}   # (S4: only a species outside the vocabulary)


def test_parquet_reader_refuses_other_files(sm, tmp_path):
    sm.matrix.to_parquet(tmp_path / 'wide.parquet')
    with pytest.raises(EBirdDataError, match='not written by SpeciesMatrix.to_parquet.*read_species_matrix'):
        SpeciesMatrix.from_parquet(tmp_path / 'wide.parquet')


def test_missing_anndata_says_how_to_install(sm, monkeypatch):
    monkeypatch.setitem(sys.modules, 'anndata', None)                     # (as if it were not installed)
    with pytest.raises(ImportError, match='pip install anndata'):
        sm.to_anndata()


def test_h5ad_round_trip(sm, tmp_path):
    ad = pytest.importorskip('anndata', reason='anndata is an optional extra: pip install anndata')
    a = sm.to_anndata()
    assert sparse.issparse(a.X) and a.X.dtype == np.float32 and a.shape == sm.X.shape
    a.write_h5ad(tmp_path / 'm.h5ad')
    b = ad.read_h5ad(tmp_path / 'm.h5ad')
    assert sparse.issparse(b.X) and (b.X != sm.X.astype(np.float32)).nnz == 0
    assert list(b.obs_names) == list(sm.checklists.index) and list(b.var_names) == sm.species
    assert b.var['scientific_name'].tolist() == [s or '' for s in sm.scientific_names]
    np.testing.assert_array_equal(b.var['taxonomic_order'].to_numpy(), np.asarray(sm.taxonomic_order, float))
    for c in ('observation_date', 'locality_id', 'latitude', 'longitude', 'duration_minutes', 'effort_distance_km', 'protocol', 'n_species'):
        want = sm.checklists[c].dt.strftime('%Y-%m-%d') if c == 'observation_date' else sm.checklists[c]   # (.h5ad stores no dates: ISO text)
        assert b.obs[c].tolist() == want.tolist(), c
    assert json.loads(b.uns['cleaning_report']) == sm.matrix.attrs['cleaning_report']
    assert json.loads(b.uns['settings']) == sm.settings and json.loads(b.uns['unknown_species']) == sm.unknown_species
    assert sm.to_anndata(dtype=np.uint8).X.dtype == np.uint8
    with pytest.raises(EBirdDataError, match='dtype must be'):
        sm.to_anndata(dtype=np.int64)


def test_export_and_embed_into_an_h5ad(tmp_path, capsys):
    "`ebird-vae export --format h5ad`, then `ebird-vae embed ... --h5ad FILE`: obsm['X_ebird_vae'] row for row by checklist id."
    ad = pytest.importorskip('anndata', reason='anndata is an optional extra: pip install anndata')
    from ebird_vae.ebd.sample import sample_path
    from ebird_vae.inference import load_embeddings
    from test_cli import SMALL, in_process
    code, out, err = in_process(capsys, 'train', '--out', tmp_path/'run', '--epochs', 1, *SMALL)
    assert code == 0, err
    code, out, err = in_process(capsys, 'export', sample_path(), '--nrows', 20000, '--out', tmp_path/'m.h5ad')
    assert code == 0 and 'AnnData ->' in out, err
    code, out, err = in_process(capsys, 'embed', tmp_path/'run', sample_path(), '--output', tmp_path/'e.parquet', '--h5ad', tmp_path/'m.h5ad')
    assert code == 0 and "as obsm['X_ebird_vae']" in out, err
    a, (Z, _) = ad.read_h5ad(tmp_path/'m.h5ad'), load_embeddings(tmp_path/'e.parquet')
    np.testing.assert_array_equal(a.obsm['X_ebird_vae'], Z.loc[a.obs_names].to_numpy(np.float32))
    assert a.n_obs < len(Z) and sparse.issparse(a.X)
    ad.AnnData(obs=pd.DataFrame(index=['S1', 'S2'])).write_h5ad(tmp_path/'other.h5ad')
    before = (tmp_path/'other.h5ad').read_bytes()
    code, out, err = in_process(capsys, 'embed', tmp_path/'run', sample_path(), '--output', tmp_path/'e2.parquet', '--h5ad', tmp_path/'other.h5ad')
    assert code == 1 and "2 of the 2 checklists of" in err and 'were not embedded (e.g. S1, S2)' in err, err
    assert (tmp_path/'other.h5ad').read_bytes() == before
