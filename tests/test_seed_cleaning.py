"""Issue 19: a model trained with the specification's functions records the cleaning of its data, so new data are
cleaned as its training data were (before, its checkpoint had no preprocessor and `embed` fell back to the builder's
default filters with a warning)."""
import warnings

import pandas as pd

from ebird_vae.data import build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.ebd.sample import sample_path
from ebird_vae.model import EBirdVAE
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import Checkpoint, set_seed, train_variational_autoencoder


def test_a_model_trained_through_the_seed_api_cleans_new_data_as_its_training_data(tmp_path):
    set_seed(0)
    sm = build_species_matrix(sample_path(), min_species_observations=30, max_duration_minutes=60)   # not the default 360
    train_ds, val_ds = split_train_val(sm, None, val_size=0.2)
    loaders = create_dataloaders(train_ds, val_ds, batch_size=256)
    model = VariationalAutoencoder(len(sm.species), latent_dimension=4, hidden_dimension=32)
    train_variational_autoencoder(model, *loaders, num_epochs=1, progress=False, checkpoint_dir=tmp_path)
    ck = Checkpoint.load(tmp_path/'final_model.pt')
    assert ck.preprocessor is not None and ck.preprocessor['params']['max_duration_minutes'] == 60
    with warnings.catch_warnings():
        warnings.simplefilter('error')                    # no "saved without its cleaning settings" warning
        emb = EBirdVAE.load(tmp_path/'final_model.pt').embed(sample_path())
    within = set(build_species_matrix(sample_path(), max_duration_minutes=60).checklists.index)   # every species kept
    longer = set(build_species_matrix(sample_path()).checklists.index) - within      # kept by the default 360-minute limit
    assert longer and set(sm.checklists.index) <= set(emb.index) <= within and not longer & set(emb.index)

def test_a_matrix_from_elsewhere_records_no_cleaning():
    X = pd.DataFrame([[1, 0], [0, 1], [1, 1]], columns=['a', 'b'], index=['S1', 'S2', 'S3'])
    tr, va = split_train_val(X, ['a', 'b'], val_size=1)
    assert tr.preprocessor is None and va.preprocessor is None


def test_the_readme_flow_through_create_species_matrix_records_the_cleaning_too():
    from ebird_vae.data import create_species_matrix, fitted_cleaning, load_ebird_data
    matrix, species = create_species_matrix(load_ebird_data(sample_path()), min_species_observations=30)
    tr, va = split_train_val(matrix, species, val_size=0.2)
    assert tr.preprocessor is not None and tr.preprocessor == fitted_cleaning(build_species_matrix(sample_path(), min_species_observations=30))

