"""The EASE blend (issue 21, item 4): fitted after training on the validation checklists, never worse there than the VAE
alone, kept by checkpoints, refused by name for a model without an EASE path."""
import numpy as np
import pytest
import torch
from scipy import sparse
from torch.utils.data import DataLoader

from ebird_vae.calibration import BlendCB, blend_nll, ease_weights, fit_blend, fit_blend_weights
from ebird_vae.data import SpeciesDataset, create_dataloaders
from ebird_vae.evaluation import EASEBaseline, ranking_metrics
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.training import Checkpoint, model_from_checkpoint, set_seed, train_variational_autoencoder
from ebird_vae.training.options import masked_logits, validation_masks


def paired(n=1200, n_pairs=20, seed=0):
    "Checklists whose species come in pairs (both or neither): EASE finds a hidden species' partner, a VAE of few epochs does not."
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, n_pairs, generator=g) < torch.linspace(0.05, 0.5, n_pairs)).float().repeat_interleave(2, 1)


def trained(x, epochs=5, seed=0, **kw):
    set_seed(seed)
    m = VariationalAutoencoder(x.shape[1], 4, 32, ease_blend=True, **kw)
    train_variational_autoencoder(m, DataLoader(x[:600], batch_size=64, shuffle=True), DataLoader(x[600:900], batch_size=64),
                                  num_epochs=epochs, progress=False, print_every=10 ** 6)
    return m


def test_the_fitted_blend_beats_one_that_ignores_ease_where_ease_is_strong():
    x = paired()
    m = trained(x)
    shown, hidden = validation_masks(DataLoader(x[600:900], batch_size=64))
    r = fit_blend(m, x[:600], shown, hidden)
    logits, scores = masked_logits(m, shown), shown @ m.ease_weights
    ignore = fit_blend_weights(logits, torch.zeros_like(scores), shown, hidden)   # the best blend with b = 0
    assert ignore[1] == 0
    assert blend_nll(m.blend_weights, logits, scores, shown, hidden) < blend_nll(ignore, logits, scores, shown, hidden) - 0.05
    assert r['b'] > 0 and r['recall_after'] > r['recall_before'] + 0.2 and r['nll_after'] < r['nll_before']
    # and on checklists it never saw, the blended completions find the pairs too
    ts, th = validation_masks(DataLoader(x[900:], batch_size=64), seed=3)
    with torch.no_grad():
        blended = m.decode(m.encode(ts)[0], x=ts)
        alone = m.decode(m.encode(ts)[0])
    recall = lambda p: ranking_metrics(p.numpy(), ts.numpy(), th.numpy())['recall@10'].mean()
    assert recall(blended) > recall(alone) + 0.2


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_the_fitted_blend_is_never_worse_on_validation_than_the_vae_alone(seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(900, 30, generator=g) < torch.linspace(0.05, 0.6, 30)).float()   # independent species: little for EASE to add
    m = trained(x, epochs=3, seed=seed)
    m.temperature.fill_(0.7)                                                         # as `TemperatureCB` may leave it
    shown, hidden = validation_masks(DataLoader(x[600:], batch_size=64), seed=seed)
    r = fit_blend(m, x[:600], shown, hidden)
    assert r['temperature_before'] == pytest.approx(0.7) and m.temperature.item() == 1.0
    assert r['nll_after'] <= r['nll_before'] + 1e-9
    logits = masked_logits(m, shown)
    start = torch.tensor([1 / 0.7, 0.0, 0.0])
    assert blend_nll(m.blend_weights, logits, shown @ m.ease_weights, shown, hidden) <= \
           blend_nll(start, logits, shown @ m.ease_weights, shown, hidden) + 1e-6


def test_fit_blend_weights_keeps_its_start_when_nothing_is_lower():
    g = torch.Generator().manual_seed(0)
    L, E = torch.randn(3000, 20, generator=g), torch.rand(3000, 20, generator=g)
    y = (torch.rand(3000, 20, generator=g) < torch.sigmoid(0.5 * L + 2 * E - 1)).float()
    best = fit_blend_weights(L, E, torch.zeros_like(y), y)
    assert torch.allclose(best, torch.tensor([0.5, 2.0, -1.0]), atol=0.2)
    assert torch.equal(fit_blend_weights(L, E, torch.zeros_like(y), y, start=best.tolist(), max_iter=1), best)


def test_a_checkpoint_keeps_the_blend(tmp_path):
    x = paired()
    set_seed(0)
    m = VariationalAutoencoder(40, 4, 32, ease_blend=True)
    cb = BlendCB()
    train_variational_autoencoder(m, DataLoader(x[:600], batch_size=64, shuffle=True), DataLoader(x[600:900], batch_size=64),
                                  num_epochs=3, progress=False, print_every=10 ** 6, checkpoint_dir=tmp_path, callbacks=[cb])
    assert cb.report['b'] != 0 and m.blend_weights[1] == cb.report['b']
    for path in [tmp_path/'final_model.pt', Checkpoint(m.state_dict(), model_config=m.config, species=list(map(str, range(40)))).save(tmp_path/'c.pt')]:
        loaded = model_from_checkpoint(path)
        assert loaded.ease_blend and torch.equal(loaded.blend_weights, m.blend_weights) and torch.equal(loaded.ease_weights, m.ease_weights)
        with torch.no_grad():
            z = m.encode(x[900:])[0]
            assert torch.allclose(loaded.decode(z, x=x[900:]), m.decode(z, x=x[900:]), atol=1e-6)
            assert not torch.allclose(loaded.decode(z, x=x[900:]), loaded.decode(z), atol=1e-3)   # the blend is in use


def test_a_model_without_an_ease_path_is_refused_by_name_before_training():
    x = paired(300)
    m = VariationalAutoencoder(40, 4, 16)
    shown, hidden = validation_masks(DataLoader(x[200:], batch_size=64))
    with pytest.raises(ValueError, match=r'ease_blend=True'): fit_blend(m, x[:200], shown, hidden)
    before = [p.clone() for p in m.parameters()]
    with pytest.raises(ValueError, match=r'VariationalAutoencoder\(\.\.\., ease_blend=True\)'):
        train_variational_autoencoder(m, DataLoader(x[:200], batch_size=64), DataLoader(x[200:], batch_size=64), num_epochs=2,
                                      progress=False, callbacks=[BlendCB()])
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))   # refused before any training


def test_blend_cb_reads_a_sparse_training_set_as_the_dense_one():
    x = paired()
    names = [f's{i}' for i in range(40)]
    reports = []
    for data in (x[:600].numpy(), sparse.csr_matrix(x[:600].numpy())):
        set_seed(0)
        m = VariationalAutoencoder(40, 4, 32, ease_blend=True)
        cb = BlendCB(l2=100.0)
        tl, vl = create_dataloaders(SpeciesDataset(data, names), SpeciesDataset(x[600:900].numpy(), names), batch_size=64)
        train_variational_autoencoder(m, tl, vl, num_epochs=2, progress=False, print_every=10 ** 6, callbacks=[cb])
        torch.testing.assert_close(m.ease_weights, torch.as_tensor(EASEBaseline(100.0).fit(x[:600].numpy()).weights_, dtype=torch.float32))
        reports.append(cb.report)
    assert reports[0] == pytest.approx(reports[1])


def test_a_multinomial_model_blends_its_shares():
    x = paired()
    m = trained(x, likelihood='multinomial')
    shown, hidden = validation_masks(DataLoader(x[600:900], batch_size=64))
    r = fit_blend(m, x[:600], shown, hidden)
    assert r['c'] == 0 and r['nll_after'] < r['nll_before'] and r['recall_after'] > r['recall_before']
    with torch.no_grad(): torch.testing.assert_close(m.decode(m.encode(shown)[0], x=shown).sum(-1), torch.ones(len(shown)))


def test_ease_weights_are_eases():
    x = paired(400).numpy()
    W = ease_weights(sparse.csr_matrix(x), 30.0)
    assert W.dtype == torch.float32 and torch.all(W.diagonal() == 0)
    np.testing.assert_allclose(W.numpy(), EASEBaseline(30.0).fit(x).weights_, atol=1e-6)
