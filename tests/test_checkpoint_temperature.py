"""A checkpoint whose calibration temperature is not above 0 (edited or damaged) is refused by name, not used."""
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import Checkpoint


def test_a_checkpoint_with_a_temperature_of_zero_is_refused_by_name(tmp_path):
    import pytest
    from ebird_vae.training import CheckpointError, model_from_checkpoint
    m = VariationalAutoencoder(10, 2, 8); m.temperature.fill_(0.0)    # (probabilities of 0 and 1 only, silently, before)
    Checkpoint(m.state_dict(), model_config=m.config, species=[str(i) for i in range(10)]).save(tmp_path/'c.pt')
    with pytest.raises(CheckpointError, match='calibration temperature of 0.0, which must be above 0'):
        model_from_checkpoint(tmp_path/'c.pt')
