"""Choose the `recommended` training preset on a validation split, then report it against `spec` on a separate test split.

    python benchmarks/choose_preset.py select --data sample [--seeds 0,1,2] [--epochs 100] [--configs a,b]
    python benchmarks/choose_preset.py report --data sample|large [--seeds 0,1,2] [--epochs 100]
    python benchmarks/choose_preset.py curve --data sample|large [--seeds 0] [--configs recommended]

Three disjoint parts, each grouped by locality (no locality in two parts): the *test* checklists are a locality split
with seed 2026 (20%); the rest is split again (seed 7, 20%) into *train* and *validation*. Every model trains on the
train part, less an inner locality split of it (seed 11, 20%) that is the trainer's own validation (early stopping and
model selection on Recall@10, calibration); the scored part is never shown to the trainer. Each run is scored twice for
calibration: as trained, and with a temperature fitted on the inner validation checklists (`ebird_vae.calibration`). `select` scores each candidate configuration on the validation part (EASE's l2 chosen on a validation part
of the train checklists, inside `evaluate_model`); `report` trains `spec` and `recommended` (the values in
`ebird_vae.presets.PRESETS`) and scores them on the test part, which `select` never sees. Probes: county, region and
season (every EBD has them) and, on the bundled sample, the truth table's habitat (its district is the county).
Writes benchmarks/results_preset_{select|report}_{data}.md: per-seed rows, means and the targets of issue 11.
"""
import argparse, datetime, os, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ebird_vae.data import SpeciesDataset, build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.evaluation import checklist_labels, evaluate_model, vae_versus_baselines
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.presets import model_options, preset, trainer_options
from ebird_vae.synthetic import sample_path, sample_truth
from ebird_vae.training import set_seed, train_variational_autoencoder
from ebird_vae.training.options import validation_masks
from ebird_vae.calibration import calibrate
from ebird_vae.evaluation import mask_checklists, vae_probabilities, expected_calibration_error, richness_errors
from bench_data import ensure_file, machine

CANDIDATES = {   # the configurations `select` compares: the specification's, and the remedies of issue 11
    'spec': {},
    'dropout': dict(corruption='dropout', dropout_rate=0.3),
    'dropout_beta0.5_fb0.25': dict(corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25),
    'dropout_beta0.3_fb0.1': dict(corruption='dropout', dropout_rate=0.2, beta=0.3, free_bits=0.1),
    'dropout_beta0.5_fb0.1_warmup': dict(corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.1, kl_warmup_epochs=20),
    'gaussian_beta0.5_fb0.25': dict(beta=0.5, free_bits=0.25),
    'dropout_beta0.5_fb0.1': dict(corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.1),
    'dropout_beta0.7_fb0.2': dict(corruption='dropout', dropout_rate=0.3, beta=0.7, free_bits=0.2),
    'multinomial_dropout_beta0.2': dict(likelihood='multinomial', corruption='dropout', dropout_rate=0.5, beta=0.2, kl_warmup_epochs=20),
    # issue 21: the options of `ebird_vae.training.options`, each added alone to the `recommended` preset of issue 11
    'recommended': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25),
    'rec+recall10': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25, recall_patience=10),
    'rec+recall20': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25, recall_patience=20),
    'rec+kl_per_species': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25, kl_per_species=True),
    'rec+alternating': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25, alternating=True),
    'rec+composite': dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25, prior='composite'),
}


def parts(sm):
    "`(train_ids, val_ids, test_ids)`: three locality-disjoint parts of the matrix."
    dev, test = split_train_val(sm, None, split='locality', val_size=0.2, random_seed=2026)
    dev_ids = list(dev.checklist_ids)
    train, val = split_train_val(sm.matrix.loc[dev_ids], sm.species, split='locality', val_size=0.2, random_seed=7,
                                 checklists=sm.checklists.loc[dev_ids])
    return list(train.checklist_ids), list(val.checklist_ids), list(test.checklist_ids)


def labels(sm, train_ids, data):
    meta, _ = checklist_labels(sm.checklists, train_ids)
    meta['locality_id'] = sm.checklists['locality_id'].astype(str)
    if data == 'sample': meta = meta.join(sample_truth()[['habitat']])   # (its district is the COUNTY column: probed as county)
    return meta


def inner(sm, train_ids):
    "`(fit_ids, inner_val_ids)`: the train part less a locality split of it, the trainer's own validation."
    fit, val = split_train_val(sm.matrix.loc[train_ids], sm.species, split='locality', val_size=0.2, random_seed=11,
                               checklists=sm.checklists.loc[train_ids])
    return list(fit.checklist_ids), list(val.checklist_ids)


def calibration_measures(model, X, seed):
    "ECE and richness RMSE of the VAE's completions of `X` (masked as `evaluate_model` masks them)."
    _, shown, hidden = mask_checklists(X, 0.2, 5, seed)
    P, cand = vae_probabilities(model, shown, progress=False), shown == 0
    return {'ECE': expected_calibration_error(P[cand], hidden[cand]),
            'richness RMSE': richness_errors(P, shown, (shown + hidden).sum(1))['richness_rmse']}


def run(sm, meta, train_ids, eval_ids, cfg, seed, iwae):
    set_seed(seed)
    M = sm.matrix
    fit_ids, val_ids = inner(sm, train_ids)
    tl, vl = create_dataloaders(SpeciesDataset(M.loc[fit_ids], sm.species, fit_ids),
                                SpeciesDataset(M.loc[val_ids], sm.species, val_ids), batch_size=cfg['batch_size'])
    model = VariationalAutoencoder(len(sm.species), **model_options(cfg))
    t0 = time.perf_counter()
    hist = train_variational_autoencoder(model, tl, vl, **trainer_options(cfg), progress=False, print_every=10 ** 6)
    train_s = time.perf_counter() - t0
    report = evaluate_model(model, M.loc[train_ids], M.loc[eval_ids], metadata=meta, iwae_samples=iwae, vae_samples=0,
                            forest_trees=0, probe_baselines=('pca',), seed=seed, progress=False)
    X = M.loc[eval_ids].to_numpy(np.float32)
    fitted = model.temperature.clone()                  # (a preset with `calibrate` has already fitted one: T=1 is measured without it)
    model.temperature.fill_(1.0)
    extra = {f'{k} (T=1)': v for k, v in calibration_measures(model, X, seed).items()}
    extra['temperature'] = calibrate(model, *validation_masks(vl))['temperature']   # (the same inner validation: the run's own fit)
    if not cfg['calibrate']: fitted = model.temperature.clone()
    model.temperature.copy_(fitted)
    extra.update({f'{k} (calibrated)': v for k, v in calibration_measures(model, X, seed).items()})
    extra['epochs trained'] = len(hist['train_loss'])
    return report, hist, train_s, extra


def measures(report, hist, train_s):
    "One row of the results: each comparison of `vae_versus_baselines` (VAE and baseline), active units, timings."
    row = {}
    for r in vae_versus_baselines(report).itertuples():   # (the report's names, shortened to the columns earlier results use)
        name = ('Recall@10 vs EASE' if r.comparison.startswith('Recall@10') else
                'NLL vs prevalence (lower wins)' if r.comparison.startswith('NLL per checklist') else r.comparison)
        row[f'{name}: vae'], row[f'{name}: baseline'] = r.vae, r.baseline
    row['active units'] = report.query("section == 'diagnostics' and metric == 'active_units'").value.iloc[0]
    cal = report.query("section == 'calibration' and method == 'prevalence'").set_index('metric').value
    if len(cal): row['ECE of prevalence'], row['richness RMSE of prevalence'] = cal['ece'], cal['richness_rmse']
    row['EASE l2'] = report.attrs['ease_l2']
    row['val loss'], row['train s'] = hist['val_loss'][-1], train_s
    return row


TARGETS = [  # issue 11, each as (description, test on the mean row)
    ('Recall@10 above EASE by >= 0.01', lambda r: r['Recall@10 vs EASE: vae'] - r['Recall@10 vs EASE: baseline'] >= 0.01),
    ('every probe >= PCA-16', lambda r: all(r[k] >= r[k.replace(': vae', ': baseline')] for k in r.index if 'probe' in k and k.endswith(': vae'))),
    ('>= 12 of 16 active units', lambda r: r['active units'] >= 12),
    ('IWAE NLL >= 10% below prevalence', lambda r: r['NLL vs prevalence (lower wins): vae'] <= 0.9 * r['NLL vs prevalence (lower wins): baseline']),
]


def gaps(r):
    "Signed margins to each target (>= 0: met)."
    probes = [k for k in r.index if 'probe' in k and k.endswith(': vae')]
    return {'Recall@10 margin over EASE - 0.01': r['Recall@10 vs EASE: vae'] - r['Recall@10 vs EASE: baseline'] - 0.01,
            'worst probe margin over PCA-16': min(r[k] - r[k.replace(': vae', ': baseline')] for k in probes),
            'active units - 12': r['active units'] - 12,
            'NLL: 0.9 x prevalence - VAE': 0.9 * r['NLL vs prevalence (lower wins): baseline'] - r['NLL vs prevalence (lower wins): vae']}


def side_by_side(values, sd=None):
    "Measures as rows, one column per configuration (or configuration and seed): 'VAE vs baseline' cells, ± sd if given."
    cell = lambda v, e: f'{v:.4g}' + (f' ± {e:.2g}' if e is not None and np.isfinite(e) else '')
    out = {}
    for key, r in values.iterrows():
        col, e = {}, (sd.loc[key] if sd is not None else None)
        for k in r.index:
            if k.endswith(': baseline'): continue
            name = k[:-len(': vae')] if k.endswith(': vae') else k
            col[name] = cell(r[k], None if e is None else e[k])
            if k.endswith(': vae'): col[name] += ' vs ' + cell(r[name + ': baseline'], None if e is None else e[name + ': baseline'])
        out[' '.join(map(str, key)) if isinstance(key, tuple) else key] = col
    return pd.DataFrame(out).rename_axis('measure (VAE vs baseline)').reset_index()


def table(df):
    fmt = lambda v: f'{v:.4g}' if isinstance(v, (float, np.floating)) else str(v)
    lines = ['| ' + ' | '.join(map(str, df.columns)) + ' |', '|' + '---|' * len(df.columns)]
    return '\n'.join(lines + ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in df.itertuples(index=False)])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('phase', choices=['select', 'report', 'curve'])
    p.add_argument('--data', choices=['sample', 'large'], default='sample')
    p.add_argument('--rows', type=int, default=1_000_000, help='rows of the generated file for --data large')
    p.add_argument('--seeds', default='0,1,2')
    p.add_argument('--epochs', type=int, default=None, help="override every configuration's epochs")
    p.add_argument('--configs', default=None, help='select: names of CANDIDATES (default: all); report: names of PRESETS (default: spec,recommended)')
    p.add_argument('--iwae', type=int, default=100)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own choice)')
    p.add_argument('--out', default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    sm = build_species_matrix(sample_path() if a.data == 'sample' else ensure_file(a.rows))
    train_ids, val_ids, test_ids = parts(sm)
    if a.phase == 'curve': return curve(a, sm, train_ids, val_ids)
    meta = labels(sm, train_ids, a.data)
    if a.phase == 'select':
        names = a.configs.split(',') if a.configs else list(CANDIDATES)
        configs = {n: preset('spec', **CANDIDATES[n]) for n in names}
        eval_ids = val_ids
    else:
        configs, eval_ids = {n: preset(n) for n in (a.configs.split(',') if a.configs else ('spec', 'recommended'))}, test_ids
    if a.epochs: configs = {n: dict(c, epochs=a.epochs) for n, c in configs.items()}
    rows = []
    for seed in map(int, a.seeds.split(',')):      # seeds outermost: every configuration is seen early, and the file
        for name, cfg in configs.items():           # is rewritten after each run, so nothing is lost if it is stopped
            report, hist, train_s, extra = run(sm, meta, train_ids, eval_ids, cfg, seed, a.iwae)
            rows.append(dict(config=name, seed=seed, **measures(report, hist, train_s), **extra))
            print(name, seed, {k: round(v, 3) for k, v in rows[-1].items() if isinstance(v, float)},
                  {k: round(v) for k, v in report.attrs['timings'].items()}, flush=True)
            write(a, sm, configs, pd.DataFrame(rows), (train_ids, val_ids, test_ids))


def curve(a, sm, train_ids, val_ids):
    "Validation Recall@10 after every epoch, on the trainer's inner split and on the scored validation part (issue 21)."
    from ebird_vae.training import Callback
    from ebird_vae.training.options import validation_recall
    name = a.configs or 'recommended'
    cfg = dict(preset('spec', **CANDIDATES[name]), **({'epochs': a.epochs} if a.epochs else {}))
    seed, M = int(a.seeds.split(',')[0]), sm.matrix
    fit_ids, inner_ids = inner(sm, train_ids)
    scored = validation_masks(create_dataloaders(SpeciesDataset(M.loc[val_ids], sm.species, val_ids),
                                                 SpeciesDataset(M.loc[val_ids], sm.species, val_ids))[1])
    class Recalls(Callback):
        order, rows = 26, []
        def before_fit(self, t): self.inner = validation_masks(t.val_loader)
        def after_epoch(self, t): self.rows.append(dict(epoch=t.epoch, inner=validation_recall(t.model, *self.inner),
                                                        scored=validation_recall(t.model, *scored)))
    set_seed(seed)
    tl, vl = create_dataloaders(SpeciesDataset(M.loc[fit_ids], sm.species, fit_ids),
                                SpeciesDataset(M.loc[inner_ids], sm.species, inner_ids), batch_size=cfg['batch_size'])
    cb = Recalls()
    train_variational_autoencoder(VariationalAutoencoder(len(sm.species), **model_options(cfg)), tl, vl, **trainer_options(cfg),
                                  progress=False, print_every=10 ** 6, callbacks=[cb])
    df = pd.DataFrame(cb.rows)
    md = [f"# Validation Recall@10 per epoch ({name}, seed {seed}, {'bundled sample' if a.data == 'sample' else f'generator file of {a.rows:,} rows'})", "",
          f"`python benchmarks/choose_preset.py curve --data {a.data}" + (f" --rows {a.rows}" if a.data == 'large' else '')
          + f" --seeds {seed} --configs {name} --threads {a.threads or torch.get_num_threads()}`: Recall@10 of the hidden 20% of each "
          f"checklist with 5 or more species, on the trainer's inner validation split ({len(cb.inner[0])} checklists) and on the "
          f"scored validation part ({len(scored[0])}), after every epoch. Never the test part.", "", table(df.round(4))]
    out = Path(a.out or f'benchmarks/results_recall_curve_{a.data}.md')
    out.write_text('\n'.join(md) + '\n')
    print(f'wrote {out}')


def write(a, sm, configs, df, split_ids):
    part = 'validation' if a.phase == 'select' else 'test'
    mean = df.drop(columns='seed').groupby('config', sort=False).mean()
    sd = df.drop(columns='seed').groupby('config', sort=False).std()
    md = [f"# Preset {a.phase} on the {'bundled sample' if a.data == 'sample' else f'generator file of {a.rows:,} rows'} ({part} checklists)", "",
          f"`python benchmarks/choose_preset.py {a.phase} --data {a.data} --seeds {a.seeds}" + (f" --threads {a.threads}" if a.threads else '')
          + (f" --epochs {a.epochs}" if a.epochs else '') + (f" --configs {a.configs}" if a.configs else '') + f" --iwae {a.iwae}`, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()['cpu']}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads (the machine was shared with other jobs: times are not benchmarks).", "",
          f"Matrix {len(sm.matrix):,} checklists x {len(sm.species)} species; locality-disjoint parts: train {len(split_ids[0]):,}, "
          f"validation {len(split_ids[1]):,}, test {len(split_ids[2]):,}. Scored on the **{part}** part. IWAE k = {a.iwae}; "
          f"EASE l2 chosen on a validation part of the train checklists; probes: logistic regression on the 16 posterior means "
          f"vs PCA-16 of the presence vectors, locality-grouped 70/30 split over train and scored checklists.", "",
          "## Configurations", "", table(pd.DataFrame([dict(config=n, **c) for n, c in configs.items()])), "",
          "## Mean over seeds", ""]
    md += [table(side_by_side(mean, sd)), "", "## Targets (on the mean over seeds; margins >= 0 meet them)", "",
           table(pd.DataFrame([dict(config=n, **{t: bool(f(r)) for t, f in TARGETS}, **{k: round(v, 4) for k, v in gaps(r).items()})
                               for n, r in mean.iterrows()])), "",
           "## Per seed", "", table(side_by_side(df.set_index(['config', 'seed'])))]
    out = Path(a.out or f'benchmarks/results_preset_{a.phase}_{a.data}.md')
    out.write_text('\n'.join(md) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__': main()
