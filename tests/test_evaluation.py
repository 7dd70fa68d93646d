"Evaluation in parts (issue 19 part 6) and what embeddings files say about each checklist (issue 20 part 5)."
import ast
import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ebird_vae
from ebird_vae.inference import ChecklistEmbedder, load_embeddings, save_embeddings
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import save_checkpoint

PACKAGE = Path(ebird_vae.__file__).parent
PARTS = ['metrics', 'baselines', 'probes', 'report', 'cli']
OLD_NAMES = ['EASE_L2_GRID', 'SEASONS', 'PROBE_LABELS', 'prevalence', 'bernoulli_nll', 'multinomial_nll', 'baseline_nll',
             'context_prevalence', 'mask_checklists', 'ranking_metrics', 'PopularityBaseline', 'ItemKNNBaseline',
             'EASEBaseline', 'select_ease_l2', 'vae_probabilities', 'species_auc', 'reliability_curve',
             'expected_calibration_error', 'richness_errors', 'probe_embeddings', 'checklist_labels', 'latent_diagnostics',
             'evaluate_model', 'summarize_report', 'plot_latent_map', 'plot_reliability', 'plot_recall',
             'vae_versus_baselines', 'evaluate_cli']

def test_evaluation_is_a_package_of_parts_that_reexports_every_old_name():
    import ebird_vae.evaluation as ev
    assert hasattr(ev, '__path__'), 'ebird_vae.evaluation should be a package'
    homes = {}
    for part in PARTS:
        mod = importlib.import_module(f'ebird_vae.evaluation.{part}')
        for name in mod.__all__: homes.setdefault(name, []).append(part)
    assert not [n for n in OLD_NAMES if n not in ev.__all__]
    assert {n: h for n, h in homes.items() if len(h) > 1} == {}   # each name has one home
    assert set(ev.__all__) == set(homes)
    for name in ev.__all__:
        obj = getattr(ev, name)
        if callable(obj): assert obj.__module__.startswith('ebird_vae.evaluation.'), name
    assert ev.evaluate_cli.__module__ == 'ebird_vae.evaluation.cli'   # what `ebird-vae evaluate` imports

def _private_imports(path: Path) -> list:
    "`from <this package> import _name` lines of a module."
    ours = lambda n: n.level > 0 or (n.module or '').startswith('ebird_vae')
    return [f'{path.name}: from {"." * n.level}{n.module or ""} import {a.name}' for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.ImportFrom) and ours(n) for a in n.names if a.name.startswith('_')]

def test_no_private_names_across_inference_and_evaluation():
    files = [PACKAGE/'inference.py', *sorted((PACKAGE/'evaluation').glob('*.py'))]
    assert len(files) == 1 + 1 + len(PARTS)
    assert [p for f in files for p in _private_imports(f)] == []

@pytest.fixture(scope='module')
def embedder(tmp_path_factory):
    "An untrained model on three species, saved with a split as `ebird-vae train` saves it."
    species = ['Asian Koel', 'House Crow', 'Common Myna']
    path = tmp_path_factory.mktemp('ck')/'model.pt'
    vae = VariationalAutoencoder(3, latent_dimension=2, hidden_dimension=4)
    split = {'split': 'random', 'train_ids': ['a', 'b'], 'val_ids': ['c'], 'test_ids': ['d']}
    save_checkpoint(vae, None, 1, 1.0, 1.0, path, metadata={'species': species, 'model_config': vae.config, 'split': split})
    return ChecklistEmbedder.from_checkpoint(path)

def test_split_column_and_no_known_species_flag(embedder):
    data = pd.DataFrame({'House Crow': [1, 0, 1, 1, 0], 'Asian Koel': [0, 0, 1, 0, 1]}, index=['a', 'b', 'c', 'd', 'new'])
    meta = embedder.checklist_metadata(embedder.prepare(data))
    assert list(meta.split) == ['train', 'train', 'validation', 'test', 'not seen in training']
    assert list(meta.no_known_species) == [False, True, False, False, False]

@pytest.mark.parametrize('suffix', ['npz', 'parquet', 'csv'])
def test_split_and_flag_survive_a_file_and_old_files_still_load(embedder, tmp_path, suffix):
    data = pd.DataFrame({'House Crow': [1, 0], 'Common Myna': [0, 0]}, index=['a', 'zz'])
    prepared = embedder.prepare(data)
    Z = embedder.embed(prepared)
    _, meta = load_embeddings(save_embeddings(Z, tmp_path/f'e.{suffix}', embedder.checklist_metadata(prepared)))
    assert list(meta.split) == ['train', 'not seen in training']
    assert meta.no_known_species.dtype == bool and list(meta.no_known_species) == [False, True]
    old_Z, old_meta = load_embeddings(save_embeddings(Z, tmp_path/f'old.{suffix}'))   # a file from before: no such columns
    np.testing.assert_allclose(old_Z.to_numpy(), Z.to_numpy(), rtol=1e-6)
    assert list(old_meta.columns) == []

def test_test_fixtures_are_not_public_names_of_the_reader_or_data():
    "`ebd_text` and `write_text` are test fixtures: out of `__all__` of the reader and the data module, still importable by name."
    import ebird_vae.data, ebird_vae.reader, ebird_vae.ebd.writer
    for mod in (ebird_vae.reader, ebird_vae.data):
        assert not {'ebd_text', 'write_text'} & set(mod.__all__), mod.__name__
        assert mod.ebd_text is ebird_vae.ebd.writer.ebd_text and mod.write_text is ebird_vae.ebd.writer.write_text
    assert {'ebd_text', 'write_text'} <= set(ebird_vae.ebd.writer.__all__)
