"""Train the default VAE on the bundled synthetic sample and evaluate it against baselines.

Usage: python benchmarks/eval_sample.py [--epochs 100] [--seeds 0,1,2] [--threads 2] [--iwae 100] [--beta 1.0] [--kl-warmup 0]
                                        [--out benchmarks/results_eval.md]
Writes a markdown report (tables, target checks, timings); nothing else is kept.
"""
import argparse, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ebird_vae.data import build_species_matrix, create_dataloaders, split_train_val
from ebird_vae.evaluation import EASEBaseline, _markdown_table, evaluate_model, mask_checklists, ranking_metrics
from ebird_vae.models import VariationalAutoencoder
from ebird_vae.synthetic import sample_path, sample_truth
from ebird_vae.training import set_seed, train_variational_autoencoder
from bench_data import machine


def run(seed, epochs, sm, meta, iwae_samples, beta=1.0, kl_warmup=0):
    set_seed(seed)
    train_ds, test_ds = split_train_val(sm, None, split='locality', random_seed=42)
    train_dl, test_dl = create_dataloaders(train_ds, test_ds, batch_size=128)
    model = VariationalAutoencoder(len(sm.species))                 # latent 16, hidden 512
    t0 = time.perf_counter()
    hist = train_variational_autoencoder(model, train_dl, test_dl, num_epochs=epochs, progress=False,
                                         print_every=max(1, epochs // 5), beta=beta, kl_warmup_epochs=kl_warmup)  # lr 1e-3, noise 0.1
    train_s = time.perf_counter() - t0
    train_df, test_df = sm.matrix.loc[train_ds.checklist_ids], sm.matrix.loc[test_ds.checklist_ids]
    t0 = time.perf_counter()
    report = evaluate_model(model, train_df, test_df, metadata=meta, context_column='district_month',
                            iwae_samples=iwae_samples, seed=seed)
    eval_s = time.perf_counter() - t0
    return report, hist, train_s, eval_s, train_df, test_df


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--seeds', type=str, default='0,1,2')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--iwae', type=int, default=100)
    p.add_argument('--out', type=str, default='benchmarks/results_eval.md')
    p.add_argument('--beta', type=float, default=1.0, help='KL weight (default 1.0 = the default trainer setting)')
    p.add_argument('--kl-warmup', type=int, default=0, help='KL warm-up epochs (default 0 = off)')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    info = machine()
    sm = build_species_matrix(sample_path())
    truth = sample_truth().reindex(sm.matrix.index)
    meta = truth[['district', 'habitat', 'locality_id']].copy()
    meta['district_month'] = truth['district'].astype(str) + '|' + pd.to_datetime(truth['observation_date']).dt.month.astype(str)
    seeds = [int(s) for s in a.seeds.split(',')]
    reports, lines = [], []
    for seed in seeds:
        report, hist, train_s, eval_s, train_df, test_df = run(seed, a.epochs, sm, meta, a.iwae, a.beta, a.kl_warmup)
        report['seed'] = seed
        reports.append(report)
        lines.append(f"- seed {seed}: training {train_s:.0f} s ({a.epochs} epochs), evaluation {eval_s:.0f} s "
                     f"({', '.join(f'{k} {v:.0f} s' for k, v in report.attrs['timings'].items())}); "
                     f"final val loss {hist['val_loss'][-1]:.2f} nats/checklist")
        print(lines[-1], flush=True)
    all_r = pd.concat(reports)
    mean = all_r.groupby(['section', 'metric', 'method', 'subset'], sort=False).value.agg(['mean', 'std']).reset_index()
    mean['value'] = mean['mean']
    # EASE lambda sweep on the last seed's masked inputs (picking the best lambda on the test set flatters EASE)
    test_X, train_X = test_df.to_numpy(np.float32), train_df.to_numpy(np.float32)
    rows, shown, hidden = mask_checklists(test_X, seed=seeds[-1])
    sweep = []
    for l2 in [10, 50, 100, 200, 500, 1000, 2000]:
        rm = ranking_metrics(EASEBaseline(l2).fit(train_X).scores(shown), shown, hidden).mean()
        sweep.append(dict(l2=l2, **rm.round(4).to_dict()))
    sweep = pd.DataFrame(sweep).set_index('l2')
    get = lambda sec, met, meth, sub='all': mean.query('section == @sec and metric == @met and method == @meth and subset == @sub')['mean'].iloc[0]
    r10 = {m: get('completion', 'recall@10', m) for m in ('vae', 'vae_mc', 'popularity', 'ease', 'item_knn')}
    hab = {m: get('embedding', 'habitat_accuracy_logistic', m, 'locality_grouped') for m in ('vae16', 'pca16')}
    active = get('diagnostics', 'active_units', 'vae')
    targets = []
    for v, what in (('vae', 'posterior mean'), ('vae_mc', '32 posterior samples')):
        targets += [
            (f'Recall@10, VAE ({what}) beats popularity by a wide margin (> +0.05)', f"{r10[v]:.3f} vs {r10['popularity']:.3f}", r10[v] > r10['popularity'] + 0.05),
            (f'Recall@10, VAE ({what}) at least level with EASE (l2=200; level = within 0.005)', f"{r10[v]:.3f} vs {r10['ease']:.3f} (EASE at its best test lambda: {sweep['recall@10'].max():.3f})", r10[v] >= r10['ease'] - 0.005)]
    targets += [
        ('habitat linear probe on 16-d >= PCA-16', f"{hab['vae16']:.3f} vs {hab['pca16']:.3f}", hab['vae16'] >= hab['pca16']),
        ('active units >= half of 16', f"{active:.1f}", active >= 8),
    ]
    sd = lambda sec, sub=None: _markdown_table(
        mean[(mean.section == sec) & ((mean.subset == sub) if sub else True)]
        .assign(cell=lambda d: d['mean'].map('{:.4f}'.format) + ((' ± ' + d['std'].map('{:.4f}'.format)) if len(seeds) > 1 else ''))
        .pivot_table(index=['metric', 'subset'] if sub is None else ['metric'], columns='method', values='cell', aggfunc='first', sort=False))
    cmd = (f"python benchmarks/eval_sample.py --epochs {a.epochs} --seeds {a.seeds} --threads {a.threads} --iwae {a.iwae}"
           + (f" --beta {a.beta}" if a.beta != 1.0 else '') + (f" --kl-warmup {a.kl_warmup}" if a.kl_warmup else ''))
    md = [f"# VAE vs baselines on the bundled synthetic sample\n",
          f"Command: `{cmd}` ({info['cpu']}, {info['usable_cores']} usable cores, torch threads {a.threads}).\n",
          f"Data: `build_species_matrix(sample_path())` = {len(sm.matrix):,} checklists x {len(sm.species)} species; "
          f"split `split_train_val(split='locality', val_size=0.2, random_seed=42)`: {len(train_df):,} train / {len(test_df):,} held-out "
          f"checklists, no locality on both sides. Model: `VariationalAutoencoder(n_species)` (latent 16, hidden 512), "
          f"trainer defaults (lr 1e-3, noise 0.1) with beta {a.beta}, KL warm-up {a.kl_warmup} epochs, batch 128. Seeds: {seeds} (mean ± sd over seeds when several). "
          f"Masking: 20% of species (>= 1) hidden on held-out checklists with >= 5 species. IWAE k = {a.iwae}. "
          f"Probes: locality-grouped 70/30 split over all checklists.\n",
          "\n".join(lines) + "\n",
          "## Targets\n", _markdown_table(pd.DataFrame(targets, columns=['target', 'measured', 'met']).set_index('target')) + "\n",
          "## Completion (all held-out checklists with >= 5 species)\n", sd('completion', 'all') + "\n",
          "## Completion by checklist length\n", sd('completion') + "\n",
          "## EASE lambda sweep (completion, one seed)\n", _markdown_table(sweep) + "\n",
          "## Density (nats; lower is better)\n", sd('density') + "\n",
          "## Per-species discrimination (masked cells, macro over species with >= 5 positives)\n", sd('species') + "\n",
          "## Calibration and richness (masked)\n", sd('calibration') + "\n",
          "## Embeddings (test accuracy, locality-grouped split)\n", sd('embedding') + "\n",
          "## Diagnostics\n", sd('diagnostics') + "\n"]
    Path(a.out).write_text("\n".join(md))
    print("\n".join(md))


if __name__ == '__main__': main()
