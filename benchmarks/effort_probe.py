"""Does conditioning on effort take effort out of the embedding? Issue 21, item 1, on the bundled sample.

    python benchmarks/effort_probe.py [--seeds 0,1,2] [--epochs 80] [--threads 1] [--out benchmarks/results_effort_probe.md]

For each seed: a locality split of the bundled sample (20% of the localities for the trainer's validation), the
`recommended` preset trained three times, the same seed for each: without effort, with `effort=True` (encoder and
decoder conditioned on the checklist's protocol, duration, distance, observers, time of day and day of year), and with
effort but without the day of year (its sin/cos and missing indicator dropped from the covariates: the date is not
effort, and a model told the date need not keep the season in its embedding). Then the 16 posterior
means of every checklist (the conditioned model given each checklist's own effort) go to linear probes, cross-validated
over 5 folds grouped by locality (no locality in two folds):
- R^2 of a ridge regression predicting log(duration) and the species count (what effort explains): should fall by at
  least half with effort=True;
- balanced accuracy of a logistic regression predicting county, season and the sample's habitat (what the birds
  say): should not fall.
Writes the per-seed rows, the means and the verdict to `--out`.
"""
import argparse, datetime, os, platform, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ebird_vae.data import build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.ebd.sample import sample_path, sample_truth
from ebird_vae.evaluation import checklist_labels
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.presets import model_options, preset, trainer_options
from ebird_vae.training import set_seed, train_variational_autoencoder

REGRESSIONS = ('log duration', 'species count')
CLASSES = ('county', 'season', 'habitat')
MODELS = {'recommended': None, 'recommended + effort': (), 'recommended + effort - day of year': ('day_sin', 'day_cos', 'date_missing')}


def train(sm, seed:int, epochs:int|None, drop:tuple|None):
    "A `recommended` model trained on a locality split of `sm` (seed `seed`), conditioned on effort less the features `drop` (None: not conditioned); the model, its scaler and the covariate columns kept."
    effort = drop is not None
    cfg = preset('recommended', epochs=epochs, seed=seed, split='locality', effort=effort)
    tr, va = split_train_val(sm, None, val_size=cfg.val_size, random_seed=seed, split='locality', effort=effort)
    keep = [i for i, n in enumerate(tr.effort_scaler.feature_names) if n not in drop] if effort else None
    if effort:
        for ds in (tr, va): ds.covariates = ds.covariates[:, keep]
    set_seed(seed)
    model = VariationalAutoencoder(len(sm.species), **model_options(cfg), n_covariates=len(keep) if effort else 0)
    tl, vl = create_dataloaders(tr, va, batch_size=cfg.batch_size)
    train_variational_autoencoder(model, tl, vl, **trainer_options(cfg), progress=False, print_every=10 ** 6)
    return model.eval(), tr.effort_scaler, keep


@torch.no_grad()
def posterior_means(model, sm, scaler, keep) -> np.ndarray:
    "The posterior mean `[n, latent]` of every checklist of `sm` (with its own effort, columns `keep`, for a conditioned model)."
    X = torch.as_tensor(sm.X.toarray(), dtype=torch.float32)
    c = None if scaler is None else torch.as_tensor(scaler.transform(sm.checklists)[:, keep])
    return model.encode(X, c)[0].numpy()


def targets(sm) -> pd.DataFrame:
    "What the probes predict, per checklist: log(duration), species count, county, season, habitat."
    ck = sm.checklists
    labels, _ = checklist_labels(ck)
    return pd.DataFrame({'log duration': np.log(ck['duration_minutes'].astype(float)),
                         'species count': np.asarray(sm.X.sum(1)).ravel().astype(float),
                         'county': labels['county'], 'season': labels['season'],
                         'habitat': sample_truth()['habitat'].reindex(ck.index)}, index=ck.index)


def probe(Z:np.ndarray, y:pd.DataFrame, groups) -> dict:
    "Locality-grouped 5-fold scores of linear probes on `Z`: R^2 for the regressions, balanced accuracy for the classes."
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import warnings
    warnings.filterwarnings('ignore', message='y_pred contains classes not in y_true')   # (a county absent from a fold's test side)
    cv, out = GroupKFold(5), {}
    for name in REGRESSIONS + CLASSES:
        keep = y[name].notna().to_numpy()
        est = make_pipeline(StandardScaler(), Ridge(1.0) if name in REGRESSIONS else LogisticRegression(max_iter=2000))
        scoring = 'r2' if name in REGRESSIONS else 'balanced_accuracy'
        out[name] = float(cross_val_score(est, Z[keep], y[name][keep].to_numpy(), groups=groups[keep], cv=cv, scoring=scoring).mean())
    return out


def machine() -> str:
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}), Python "
            f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)")


def markdown(df:pd.DataFrame, cmd:str, where:str, seconds:float) -> str:
    "The results page: command, machine, per-seed table, means and the verdict."
    fmt = lambda v: f'{v:.3f}' if isinstance(v, float) else str(v)
    tab = lambda d: '\n'.join(['| ' + ' | '.join(d.columns) + ' |', '|' + '---|' * len(d.columns)] +
                              ['| ' + ' | '.join(fmt(v) for v in r) + ' |' for r in d.itertuples(index=False)])
    mean = df.drop(columns='seed').groupby('model', sort=False).mean().reset_index()
    sd = df.drop(columns='seed').groupby('model', sort=False).std().reset_index()
    plain, verdict = mean.set_index('model').loc['recommended'], []
    for name, cond in mean.set_index('model').drop(index='recommended').iterrows():
        verdict += [f'{name}:']
        verdict += [f"- R^2 of {k}: {plain[k]:.3f} -> {cond[k]:.3f} ({cond[k] / plain[k]:.2f} of the unconditioned; target at most 0.5): "
                    f"{'met' if cond[k] <= 0.5 * plain[k] else 'not met'}" for k in REGRESSIONS]
        verdict += [f"- {k} probe: {plain[k]:.3f} -> {cond[k]:.3f} ({cond[k] - plain[k]:+.3f}; target: not lower): "
                    f"{'met' if cond[k] >= plain[k] - 0.005 else 'not met'}" for k in CLASSES]
        verdict += ['']
    return '\n'.join([
        '# Effort probe: does conditioning on effort take effort out of the embedding? (issue 21, item 1)', '',
        f'Command: `{cmd}`', '', f'Machine: {where}. Wall time {seconds / 60:.1f} min.', '',
        'Bundled sample (4,179 checklists, 389 species), a locality split per seed (20% of localities: the trainer\'s '
        'validation), the `recommended` preset without effort, with `effort=True`, and with effort less the day of year. Probes on the 16 posterior means of every '
        'checklist, 5 folds grouped by locality: R^2 (ridge) of log(duration) and the species count, balanced accuracy '
        '(logistic regression) of county, season and habitat (the sample\'s truth table).', '',
        '## Per seed', '', tab(df), '', '## Mean of the seeds', '', tab(mean), '', '## Standard deviation over the seeds', '',
        tab(sd), '', '## Verdict (a probe counts as not lower within 0.005)', '', *verdict])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', default='0,1,2')
    p.add_argument('--epochs', type=int, default=None, help="epochs of each run (default: the preset's)")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--models', default=','.join(MODELS), help=f'comma-separated, of: {", ".join(MODELS)}')
    p.add_argument('--out', default=str(Path(__file__).parent/'results_effort_probe.md'))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cmd = 'python benchmarks/effort_probe.py ' + ' '.join(f'--{k} {v}' for k, v in (('seeds', a.seeds), ('epochs', a.epochs), ('threads', a.threads)) if v is not None)
    if a.models != ','.join(MODELS): cmd += f" --models '{a.models}'"
    t0, sm = time.perf_counter(), build_species_matrix(sample_path())
    y, groups = targets(sm), sm.checklists['locality_id'].astype(str).to_numpy()
    rows = []
    for seed in map(int, a.seeds.split(',')):
        for name in a.models.split(','):
            model, scaler, keep = train(sm, seed, a.epochs, MODELS[name])
            rows.append(dict(model=name, seed=seed, **probe(posterior_means(model, sm, scaler if keep else None, keep), y, groups)))
            print(rows[-1], f'{time.perf_counter() - t0:.0f}s', flush=True)
    Path(a.out).write_text(markdown(pd.DataFrame(rows), cmd, machine(), time.perf_counter() - t0))
    print(Path(a.out).read_text())


if __name__ == '__main__': main()
