"""Choose the `recommended` training preset on a validation split, then report it against `spec` on a separate test split.

    python benchmarks/choose_preset.py select --data sample|large|small|subtle [--seeds 0,1,2] [--epochs 100] [--configs a,b]
    python benchmarks/choose_preset.py report --data sample|large|small|subtle [--seeds 0,1,2] [--epochs 100]
    python benchmarks/choose_preset.py curve --data sample|large|small|subtle [--seeds 0] [--configs recommended]

Data: the bundled sample; the generator's file of `--rows` rows (default 1M); `small`, a generator world of about 1,500
checklists (the 36,000-row file); `subtle`, a world of about 5,000 checklists whose place signal is subtle (a tenth of
the species keep their place pattern: regions differ by a few species). The generated files are written once under
benchmarks/data/.

Three disjoint parts, each grouped by locality (no locality in two parts): the *test* checklists are a locality split
with seed 2026 (20%); the rest is split again (seed 7, 20%) into *train* and *validation*. Every model trains on the
train part, less an inner locality split of it (seed 11, 20%) that is the trainer's own validation (early stopping and
model selection on Recall@10, calibration, the EASE blend); the scored part is never shown to the trainer. A run with
effort conditioning gets each checklist's effort scaled on its training rows. Runs of plain models (no blend, no effort)
are also scored twice for calibration: as trained, and with a temperature fitted on the inner validation checklists
(`ebird_vae.calibration`). `select` scores each candidate configuration on the validation part (EASE's l2 chosen on a validation part
of the train checklists, inside `evaluate_model`); `report` trains `spec` and `recommended` (the values in
`ebird_vae.presets.PRESETS`) and scores them on the test part, which `select` never sees. Probes: county, region and
season (every EBD has them) and, on the bundled sample, the truth table's habitat (its district is the county).
Writes benchmarks/results_preset_{select|report}_{data}.md: per-seed rows, means, and issue 21's targets, one line per
target and configuration (measured value, threshold, met or missed).
"""
import argparse, dataclasses, datetime, os, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ebird_vae.effort import EFFORT_COLUMNS, EffortScaler
from ebird_vae.data import SpeciesDataset, build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.evaluation import checklist_labels, effort_probe, evaluate_model, vae_versus_baselines
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.presets import PRESETS, TrainConfig, model_options, preset, trainer_options
from ebird_vae.synthetic import sample_path, sample_truth, write_ebd
from ebird_vae.training import set_seed, train_variational_autoencoder
from ebird_vae.training.options import validation_masks
from ebird_vae.calibration import calibrate
from ebird_vae.evaluation import mask_checklists, vae_probabilities, expected_calibration_error, richness_errors
from bench_data import DATA, ensure_file, machine

HERE = Path(__file__).resolve().parent   # results are written beside this script, wherever it is run from

SPEC = dataclasses.asdict(PRESETS['spec'])
RECOMMENDED = {k: v for k, v in dataclasses.asdict(PRESETS['recommended']).items() if v != SPEC[k]}   # today's preset, as spec's overrides
ISSUE11 = dict(epochs=80, corruption='dropout', dropout_rate=0.3, beta=0.5, free_bits=0.25)         # issue 11's recommended

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
    'issue11': ISSUE11,
    # issue 21: today's `recommended` preset (issue 11's, calibrated), and each option of issue 21 added to it alone
    'recommended': RECOMMENDED,
    'rec+recall10': dict(RECOMMENDED, recall_patience=10),
    'rec+recall20': dict(RECOMMENDED, recall_patience=20),
    'rec+kl_per_species': dict(RECOMMENDED, kl_per_species=True),
    'rec+alternating': dict(RECOMMENDED, alternating=True),
    'rec+composite': dict(RECOMMENDED, prior='composite'),
    # capacity scaled to the data (issue 21 item 4): narrower networks that stop on validation Recall@10, for small worlds
    'rec+h256': dict(RECOMMENDED, hidden_dim=256),
    'rec+h128': dict(RECOMMENDED, hidden_dim=128),
    'rec+h256+recall10': dict(RECOMMENDED, hidden_dim=256, recall_patience=10),
    'rec+h128+recall10': dict(RECOMMENDED, hidden_dim=128, recall_patience=10),
    # informative units: a lighter KL, with and without the free-bits floor
    'rec+beta0.2': dict(RECOMMENDED, beta=0.2),
    'rec+beta0.2+fb0.1': dict(RECOMMENDED, beta=0.2, free_bits=0.1),
    # options that other work of issue 21 adds to TrainConfig: `select` runs them once the field exists (see `configs_for`)
    'rec+blend': dict(RECOMMENDED, ease_blend=True),
    'rec+blend+recall10': dict(RECOMMENDED, ease_blend=True, recall_patience=10),
    'rec+effort': dict(RECOMMENDED, effort=True),
    'rec+effort+recall10': dict(RECOMMENDED, effort=True, recall_patience=10),
    'rec+beta0.2+blend': dict(RECOMMENDED, beta=0.2, ease_blend=True),
    'rec+beta0.2+effort+blend': dict(RECOMMENDED, beta=0.2, effort=True, ease_blend=True),
    'rec+effort+blend': dict(RECOMMENDED, effort=True, ease_blend=True),
}


def missing_options(overrides:dict) -> list:
    "The options of a candidate that this version's `TrainConfig` does not have (yet)."
    return sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})


def configs_for(names, asked:bool) -> dict:
    "The candidates `names` as configurations; those needing an option `TrainConfig` lacks are skipped with a message, or refused if `asked` by name."
    out = {}
    for n in names:
        if n not in CANDIDATES: raise SystemExit(f"unknown configuration {n!r}: choose among {', '.join(CANDIDATES)}")
        missing = missing_options(CANDIDATES[n])
        if missing:
            msg = (f"configuration {n!r} needs the TrainConfig option(s) {missing}, which this version of ebird_vae does not have "
                   f"yet (they come with the merge of issue 21's {'EASE blend' if 'ease_blend' in missing else 'effort-conditioned model'})")
            if asked: raise SystemExit(msg + '.')
            print(msg + ': skipped.', flush=True); continue
        out[n] = preset('spec', **CANDIDATES[n])
    return out


WORLDS = {   # generator worlds: write_ebd's arguments (seed 0); `small` is the same file as `--data large --rows 36000`
    'small': dict(n_rows=36_000),
    'subtle': dict(n_checklists=7_200, place_signal=0.1),
}


def ensure_world(name:str) -> Path:
    "The generator world `name` (`WORLDS`), written once and cached under benchmarks/data/."
    if name == 'small': return ensure_file(WORLDS['small']['n_rows'])
    DATA.mkdir(exist_ok=True)
    path = DATA / f'ebd_world_{name}.txt'
    done = path.with_name(path.name + '.done')
    if path.exists() and done.exists(): return path
    print(f'writing {path} ({WORLDS[name]}) ...', flush=True)
    t = time.perf_counter()
    truth = write_ebd(path, seed=0, **WORLDS[name])
    done.write_text(f'{len(truth)} outings, {time.perf_counter() - t:.0f} s\n')
    return path


def data_path(a):
    return sample_path() if a.data == 'sample' else ensure_file(a.rows) if a.data == 'large' else ensure_world(a.data)


def data_name(a):
    return {'sample': 'bundled sample', 'large': f'generator file of {a.rows:,} rows',
            'small': 'small generator world (the 36,000-row file)',
            'subtle': "subtle-place generator world (place_signal 0.1)"}[a.data]


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
    for c in EFFORT_COLUMNS:   # (what a model conditioned on effort reads)
        if c not in meta: meta[c] = sm.checklists[c]
    month = pd.to_datetime(sm.checklists['observation_date']).dt.month.astype(str)
    meta['county_month'] = sm.checklists['county'].astype(str) + '|' + month   # the context of "prevalence by place and month"
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


def datasets(sm, fit_ids, val_ids, effort:bool):
    "The trainer's two datasets, with each checklist's effort (scaled as the fit rows' `EffortScaler`) when `effort`."
    M, ck = sm.matrix, sm.checklists
    scaler = EffortScaler().fit(ck.loc[fit_ids]) if effort else None
    cov = lambda ids: None if scaler is None else scaler.transform(ck.loc[ids])
    out = [SpeciesDataset(M.loc[ids], sm.species, ids, covariates=cov(ids)) for ids in (fit_ids, val_ids)]
    for d in out: d.effort_scaler = scaler
    return out, scaler


def temperature_measures(model, eval_matrix, vl, cfg, seed) -> dict:
    "ECE and richness RMSE as trained (T=1) and with a temperature fitted on the inner validation part (plain models only)."
    X = eval_matrix.to_numpy(np.float32)
    fitted = model.temperature.clone()                  # (a preset with `calibrate` has already fitted one: T=1 is measured without it)
    model.temperature.fill_(1.0)
    extra = {f'{k} (T=1)': v for k, v in calibration_measures(model, X, seed).items()}
    extra['temperature'] = calibrate(model, *validation_masks(vl))['temperature']   # (the same inner validation: the run's own fit)
    if not cfg['calibrate']: fitted = model.temperature.clone()
    model.temperature.copy_(fitted)
    extra.update({f'{k} (calibrated)': v for k, v in calibration_measures(model, X, seed).items()})
    return extra


def run(sm, meta, train_ids, eval_ids, cfg, seed, iwae):
    set_seed(seed)
    M = sm.matrix
    fit_ids, val_ids = inner(sm, train_ids)
    (train_ds, val_ds), scaler = datasets(sm, fit_ids, val_ids, option(cfg, 'effort', False))
    tl, vl = create_dataloaders(train_ds, val_ds, batch_size=cfg['batch_size'])
    model = VariationalAutoencoder(len(sm.species), **model_options(cfg), **({'n_covariates': scaler.n_features} if scaler else {}))
    if scaler is not None: model.effort_scaler = scaler   # (what `evaluate_model` scales each checklist's effort with)
    t0 = time.perf_counter()
    hist = train_variational_autoencoder(model, tl, vl, **trainer_options(cfg), progress=False, print_every=10 ** 6)
    train_s = time.perf_counter() - t0
    report, det = evaluate_model(model, M.loc[train_ids], M.loc[eval_ids], metadata=meta, iwae_samples=iwae, vae_samples=0,
                                 forest_trees=0, probe_baselines=('pca', 'random'), context_column='county_month', seed=seed,
                                 details=True, progress=False)
    extra = {} if scaler is not None or option(cfg, 'ease_blend', False) else temperature_measures(model, M.loc[eval_ids], vl, cfg, seed)
    extra['epochs trained'] = len(hist['train_loss'])
    extra[INFORMATIVE] = informative_units(det['diagnostics'].kl.to_numpy(), cfg['free_bits'])
    r2 = effort_probe(det['mean'], sm.checklists.loc[list(det['ids'])], alpha=1.0)
    extra['effort R^2 log duration'], extra['effort R^2 species count'] = r2['log_duration'], r2['species_count']
    return report, hist, train_s, extra


INFORMATIVE = 'informative units (KL > free bits + 0.1)'

def informative_units(kl_per_dimension, free_bits:float, margin:float=0.1) -> int:
    "Latent dimensions whose mean KL on the scored checklists is clearly above the free-bits floor (by more than `margin` nats)."
    return int((np.asarray(kl_per_dimension) > free_bits + margin).sum())


def value(report, section, metric, method, subset=None):
    r = report[(report.section == section) & (report.metric == metric) & (report.method == method)]
    if subset is not None: r = r[r.subset == subset]
    return float(r.value.iloc[0]) if len(r) else np.nan


def measures(report, hist, train_s):
    "One row of the results: the VAE and the baseline of each target's comparison, the other verdict rows, active units, timings."
    row = {}
    for r in vae_versus_baselines(report).itertuples():   # probes: the best of PCA-16, random-16 and the majority floor
        if r.comparison.startswith(('Recall@10', 'NLL per checklist', 'calibration', 'richness')): continue
        row[f'{r.comparison}: vae'], row[f'{r.comparison}: baseline'] = r.vae, r.baseline
    nll = report[(report.section == 'density') & report.metric.str.startswith('iwae_nll_per_checklist')].value.iloc[0]
    pairs = {'Recall@10 vs EASE': (value(report, 'completion', 'recall@10', 'vae', 'all'), value(report, 'completion', 'recall@10', 'ease', 'all')),
             'NLL vs prevalence (lower wins)': (nll, value(report, 'density', 'nll_per_checklist', 'prevalence')),
             'NLL vs prevalence by county and month (lower wins)': (nll, value(report, 'density', 'nll_per_checklist', 'context_prevalence')),
             'ECE vs prevalence (lower wins)': (value(report, 'calibration', 'ece', 'vae'), value(report, 'calibration', 'ece', 'prevalence')),
             'richness RMSE vs prevalence (lower wins)': (value(report, 'calibration', 'richness_rmse', 'vae'),
                                                          value(report, 'calibration', 'richness_rmse', 'prevalence'))}
    for name, (v, b) in pairs.items(): row[f'{name}: vae'], row[f'{name}: baseline'] = v, b
    row['active units'] = value(report, 'diagnostics', 'active_units', 'vae')
    row['EASE l2'] = report.attrs['ease_l2']
    row['val loss'], row['train s'] = hist['val_loss'][-1], train_s
    return row


def targets(r, reference=None, effort:bool=False) -> list:
    "Issue 21's targets on a mean row `r`: `(target, measured, threshold, met)`; effort R^2 against the unconditioned `reference` row."
    V, B = (lambda k: r[f'{k}: vae']), (lambda k: r[f'{k}: baseline'])
    probes = [k[:-len(': vae')] for k in r.index if 'probe' in k and k.endswith(': vae')]
    worst = min(probes, key=lambda k: V(k) - B(k)) if probes else None
    out = [('Recall@10 >= EASE + 0.02', V('Recall@10 vs EASE'), B('Recall@10 vs EASE') + 0.02, '>='),
           (f'every probe >= best of PCA-16, random-16, floor + 0.01 (worst: {worst})',
            V(worst) - B(worst) if worst else np.nan, 0.01, '>='),
           ('ECE <= prevalence', V('ECE vs prevalence (lower wins)'), B('ECE vs prevalence (lower wins)'), '<='),
           ('richness RMSE <= prevalence', V('richness RMSE vs prevalence (lower wins)'), B('richness RMSE vs prevalence (lower wins)'), '<='),
           ('>= 12 of 16 units with KL > free bits + 0.1', r[INFORMATIVE], 12, '>='),
           ('IWAE NLL <= 0.9 x prevalence', V('NLL vs prevalence (lower wins)'), 0.9 * B('NLL vs prevalence (lower wins)'), '<='),
           ('IWAE NLL < prevalence by county and month', V('NLL vs prevalence by county and month (lower wins)'),
            B('NLL vs prevalence by county and month (lower wins)'), '<')]
    for k in ('log duration', 'species count'):
        threshold = 0.5 * reference[f'effort R^2 {k}'] if (effort and reference is not None) else np.nan
        out.append((f'effort R^2 ({k}) <= half the unconditioned model\'s', r[f'effort R^2 {k}'], threshold, '<='))
    ok = {'>=': np.greater_equal, '<=': np.less_equal, '<': np.less}
    return [dict(target=t, measured=m, threshold=th, met=('met' if ok[op](m, th) else 'missed') if np.isfinite(m) and np.isfinite(th)
                 else 'n/a') for t, m, th, op in out]


def summary(mean, configs) -> pd.DataFrame:
    "One line per configuration and target; effort targets only for effort-conditioned configurations, against `recommended`."
    ref = mean.loc['recommended'] if 'recommended' in mean.index else None
    return pd.DataFrame([dict(config=n, **t) for n, r in mean.iterrows()
                         for t in targets(r, ref, effort=bool(option(configs[n], 'effort', False)))])


def option(config, key, default=None):
    "`config[key]` for a TrainConfig or dict, `default` where this version has no such option." 
    return config[key] if key in config.keys() else default


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
    p.add_argument('--data', choices=['sample', 'large', 'small', 'subtle'], default='sample')
    p.add_argument('--rows', type=int, default=1_000_000, help='rows of the generated file for --data large')
    p.add_argument('--seeds', default='0,1,2')
    p.add_argument('--epochs', type=int, default=None, help="override every configuration's epochs")
    p.add_argument('--configs', default=None, help='select: names of CANDIDATES (default: all); report: names of PRESETS (default: spec,recommended)')
    p.add_argument('--iwae', type=int, default=100)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own choice)')
    p.add_argument('--out', default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    if a.phase == 'select': configs = configs_for(a.configs.split(',') if a.configs else list(CANDIDATES), asked=bool(a.configs))
    elif a.phase == 'report': configs = {n: preset(n) for n in (a.configs.split(',') if a.configs else ('spec', 'recommended'))}
    sm = build_species_matrix(data_path(a))            # (the configurations are checked first: nothing is read for a bad name)
    train_ids, val_ids, test_ids = parts(sm)
    if a.phase == 'curve': return curve(a, sm, train_ids, val_ids)
    meta, eval_ids = labels(sm, train_ids, a.data), (val_ids if a.phase == 'select' else test_ids)
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
    md = [f"# Validation Recall@10 per epoch ({name}, seed {seed}, {data_name(a)})", "",
          f"`python benchmarks/choose_preset.py curve --data {a.data}" + (f" --rows {a.rows}" if a.data == 'large' else '')
          + f" --seeds {seed} --configs {name} --threads {a.threads or torch.get_num_threads()}`: Recall@10 of the hidden 20% of each "
          f"checklist with 5 or more species, on the trainer's inner validation split ({len(cb.inner[0])} checklists) and on the "
          f"scored validation part ({len(scored[0])}), after every epoch. Never the test part.", "", table(df.round(4))]
    out = Path(a.out or HERE / f'results_recall_curve_{a.data}.md')
    out.write_text('\n'.join(md) + '\n')
    print(f'wrote {out}')


def write(a, sm, configs, df, split_ids):
    part = 'validation' if a.phase == 'select' else 'test'
    mean = df.drop(columns='seed').groupby('config', sort=False).mean()
    sd = df.drop(columns='seed').groupby('config', sort=False).std()
    md = [f"# Preset {a.phase} on the {data_name(a)} ({part} checklists)", "",
          f"`python benchmarks/choose_preset.py {a.phase} --data {a.data} --seeds {a.seeds}" + (f" --threads {a.threads}" if a.threads else '')
          + (f" --epochs {a.epochs}" if a.epochs else '') + (f" --configs {a.configs}" if a.configs else '') + f" --iwae {a.iwae}`, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()['cpu']}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads (the machine was shared with other jobs: times are not benchmarks).", "",
          f"Matrix {len(sm.matrix):,} checklists x {len(sm.species)} species; locality-disjoint parts: train {len(split_ids[0]):,}, "
          f"validation {len(split_ids[1]):,}, test {len(split_ids[2]):,}. Scored on the **{part}** part. IWAE k = {a.iwae}; "
          f"EASE l2 chosen on a validation part of the train checklists; probes: logistic regression on the 16 posterior means "
          f"vs PCA-16 and random-16 of the presence vectors and the majority floor, locality-grouped 70/30 split over train and "
          f"scored checklists; prevalence by county and month: each species' share of the training checklists of the same county "
          f"and month; effort R^2: `effort_probe` (ridge, 5 locality-grouped folds) on the same checklists.", "",
          "## Configurations", "", table(pd.DataFrame([dict(config=n, **c) for n, c in configs.items()])), "",
          "## Mean over seeds", ""]
    summ = summary(mean, configs)
    met = summ[summ.met != 'n/a'].groupby('config', sort=False).met.agg(lambda m: f"{(m == 'met').sum()} of {len(m)}")
    md += [table(side_by_side(mean, sd)), "", f"## Summary: issue 21's targets (mean over {df.seed.nunique()} seed(s), {part} part)", "",
           "Each target's measured value against its threshold. The effort targets apply to effort-conditioned configurations "
           "(against `recommended`'s R^2); 'n/a' elsewhere. Met: " + '; '.join(f'{n} {m}' for n, m in met.items()) + '.', "",
           table(summ), "", "## Per seed", "", table(side_by_side(df.set_index(['config', 'seed'])))]
    out = Path(a.out or HERE / f'results_preset_{a.phase}_{a.data}.md')
    out.write_text('\n'.join(md) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__': main()
