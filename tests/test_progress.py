"""What a training run shows while it runs and when it ends (issue 20, part 4): curves and log lines that compare
training and validation on the same quantity, elapsed time and an ETA for the whole run, a terminal bar that never
leaves a stray `]`, and closing lines that list the files written and the next command."""
import contextlib, io, math, re

import matplotlib
matplotlib.use('Agg')
import pytest
import torch
from torch.utils.data import DataLoader

from ebird_vae.models import VariationalAutoencoder

SPEC_KEYS = ['train_loss', 'train_recon_loss', 'train_kl_loss', 'val_loss', 'val_recon_loss', 'val_kl_loss']


def toy_loaders(n=400, species=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, species, generator=g) < 0.2).float()
    return DataLoader(x[:n - 80], batch_size=16, shuffle=True), DataLoader(x[n - 80:], batch_size=16)


def train(epochs=3, **kw):
    "A short run of the recommended preset's loss (beta 0.5, free bits 0.25, input dropout); (history, stdout)."
    from ebird_vae.training import train_variational_autoencoder, set_seed
    set_seed(0)
    train_loader, val_loader = toy_loaders()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = train_variational_autoencoder(VariationalAutoencoder(40, 4, 64), train_loader, val_loader, num_epochs=epochs,
                                                corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25,
                                                **{'progress': False, **kw})
    return history, out.getvalue()


def test_history_keeps_the_spec_keys_and_gives_the_same_quantity_on_both_sides():
    from ebird_vae.training import elbo_losses
    history, _ = train()
    assert list(history) == SPEC_KEYS   # the specification's keys and meanings, unchanged
    elbo = elbo_losses(history)
    assert elbo['val'] == pytest.approx(history['val_loss'])   # validation's loss is reconstruction + KL
    assert elbo['train'] == pytest.approx([r + k for r, k in zip(history['train_recon_loss'], history['train_kl_loss'])])
    # train_loss stays the objective: with beta 0.5 and free bits it is not reconstruction + KL
    assert all(abs(t - e) > 1e-3 for t, e in zip(history['train_loss'], elbo['train']))


def test_epoch_line_compares_like_with_like_and_gives_elapsed_time_and_eta():
    history, out = train()
    lines = [l for l in out.splitlines() if l.startswith('Epoch')]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f'Epoch {i + 1}/3 | Train Loss: {history["train_loss"][i]:.4f} (objective)')
        assert 'Recon + KL, same on both sides:' in line
        train_elbo = history['train_recon_loss'][i] + history['train_kl_loss'][i]
        assert f'train {train_elbo:.4f} (' in line and f'val {history["val_loss"][i]:.4f} (' in line
        assert re.search(r'\| \d+\.\ds, elapsed \d+:\d\d, ETA \d+:\d\d$', line), line
    assert lines[-1].endswith('ETA 0:00')


def test_durations_and_the_estimate():
    from ebird_vae.training import format_duration, estimate_remaining
    assert [format_duration(s) for s in (0, 59.4, 61, 3600, 3725)] == ['0:00', '0:59', '1:01', '1:00:00', '1:02:05']
    assert format_duration(math.inf) == '?' and format_duration(estimate_remaining(0, 0, 5)) == '?'
    assert estimate_remaining(20, 2, 78) == pytest.approx(780)


def test_curves_compare_like_with_like_and_say_so():
    from ebird_vae.training import plot_training_curves
    history, _ = train()
    fig = plot_training_curves(history)
    first = fig.axes[0]
    assert 'Reconstruction + KL' in first.get_title()
    train_line, val_line = first.get_lines()
    assert list(train_line.get_ydata()) == pytest.approx([r + k for r, k in zip(history['train_recon_loss'], history['train_kl_loss'])])
    assert list(val_line.get_ydata()) == pytest.approx(history['val_loss'])
    assert [l.get_label() for l in first.get_lines()] == ['Train (corrupted inputs)', 'Validation']
    objective = [ax for ax in fig.axes if 'objective' in ax.get_title().lower()]
    assert len(objective) == 1 and list(objective[0].get_lines()[0].get_ydata()) == pytest.approx(history['train_loss'])
    assert 'same quantity' in fig._suptitle.get_text()


@pytest.mark.parametrize('columns', [50, 80])
def test_terminal_bar_never_wider_than_the_terminal(monkeypatch, columns):
    "A line wider than the terminal wraps, and the carriage return then leaves its tail (the stray `]`) on the screen."
    import fastprogress.fastprogress as fp
    monkeypatch.setenv('COLUMNS', str(columns))
    monkeypatch.setattr(fp, 'master_bar', fp.ConsoleMasterBar)
    monkeypatch.setattr(fp, 'progress_bar', fp.ConsoleProgressBar)
    _, out = train(epochs=2, progress=True)
    bar_writes = [s for s in re.split(r'[\r\n]', out) if ' : |' in s or s.startswith('Epoch ') and ' : ' in s[:14]]
    assert bar_writes, out[:500]
    assert max(map(len, bar_writes)) <= columns - 1, max(bar_writes, key=len)
    assert any('elapsed' in s for s in bar_writes) or columns < 60


def test_closing_lines_list_the_files_and_the_next_command(tmp_path):
    from ebird_vae.training import closing_lines
    run = tmp_path/'run'
    (run/'checkpoints').mkdir(parents=True)
    for name in ['checkpoints/checkpoint_epoch_10.pt', 'final_model.pt', 'history.json', 'run.json', 'species.txt',
                 'training_curves.png']: (run/name).touch()
    first, nxt = closing_lines(run, seconds=3725)
    assert first == (f"Finished in 1:02:05. Files in {run}/: checkpoints/ (1 file), final_model.pt, history.json, run.json, "
                     f"species.txt, training_curves.png.")
    assert nxt == f"Next, embed the checklists: ebird-vae embed {run}/final_model.pt --output {run}/embeddings.parquet"
