"An honest evaluation report (issue 20 parts 1-3): the bundled truth without flags, a verdict against every baseline with ties, plots a reader can use, summary.md with its plots and a self-contained report.html."
import base64
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ebird_vae.evaluation import vae_versus_baselines

def _run(*args, cwd):
    r = subprocess.run(['ebird-vae', *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout

@pytest.fixture(scope='module')
def evaluation(tmp_path_factory):
    "A tiny model trained on the bundled sample, evaluated as the README shows: no flag but the checkpoint and the folder."
    d = tmp_path_factory.mktemp('run')
    _run('train', '--out', 'run', '--epochs', '2', '--hidden-dim', '32', cwd=d)
    out = _run('evaluate', 'run/final_model.pt', '--output-dir', 'eval', '--iwae-samples', '5', '--forest-trees', '10', cwd=d)
    e = d/'eval'
    return dict(out=out, dir=e, summary=(e/'summary.md').read_text(), report=pd.read_csv(e/'report.csv'))

def test_bundled_truth_is_used_without_flags_and_said(evaluation):
    s, report = evaluation['summary'], evaluation['report']
    assert "district and habitat from the bundled sample's truth table" in s and "district and habitat" in evaluation['out']
    assert '| district | True |' in s and '| habitat | True |' in s
    assert {'district_accuracy_logistic', 'habitat_accuracy_logistic'} <= set(report.metric)
    assert re.search(r"- split: the training run's \w+ split \(val_size [\d.]+, seed \d+; recorded in the checkpoint\)", s), s[:800]
    assert '- seed of the masking, importance samples and probes: 0' in s

def test_report_csv_keeps_its_columns(evaluation):
    assert list(evaluation['report'].columns) == ['section', 'metric', 'method', 'subset', 'value', 'n']

def _verdict_table(summary):
    part = summary[summary.index('## Where the VAE wins'):summary.index('## Plots')]
    lines = [l for l in part.splitlines() if l.startswith('|')]
    head = [c.strip() for c in lines[0].strip('|').split('|')]
    return pd.DataFrame([[c.strip() for c in l.strip('|').split('|')] for l in lines[2:]], columns=head)

def test_verdict_against_every_baseline(evaluation):
    vt, report = _verdict_table(evaluation['summary']), evaluation['report']
    assert set(vt.verdict) <= {'win', 'tie', 'loss'}
    probes = vt[vt.comparison.str.endswith('probe accuracy')]
    assert len(probes) == 5 and (probes.floor != '').all() and (probes.random16 != '').all() and (probes.margin != '').all()
    for r in probes.itertuples():
        label = r.comparison.split()[0]
        acc = report[report.metric == f'{label}_accuracy_logistic'].set_index('method').value
        floor = report[report.metric == f'{label}_accuracy_floor'].value.iloc[0]
        best = max(acc[[m for m in acc.index if re.fullmatch(r'(pca|random)\d+', m)]].max(), floor)   # 16 numbers against 16 numbers and the floor
        assert r.verdict != 'win' or acc[[m for m in acc.index if m.startswith('vae')][0]] > best * 1.01, r
    nll = vt[vt.comparison.str.startswith('NLL per checklist')].iloc[0]
    assert 'prevalence' in nll.baselines and 'context_prevalence' in nll.baselines
    assert {'calibration: ECE (lower wins)', 'richness RMSE, species (lower wins)'} <= set(vt.comparison)
    assert re.search(r'The VAE wins \d+, ties \d+ and loses \d+ of \d+ comparisons', evaluation['summary'])

def _toy(rows):
    return pd.DataFrame([dict(section=s, metric=m, method=me, subset=su, value=v, n=10) for s, m, me, su, v in rows])

def test_ties_and_floors_are_not_wins():
    probe = lambda label, vae, pca, rnd, floor: [('embedding', f'{label}_accuracy_logistic', m, 'locality_grouped', v)
                                                 for m, v in [('vae16', vae), ('pca16', pca), ('random16', rnd)]] + \
                                                [('embedding', f'{label}_accuracy_floor', 'majority_class', 'locality_grouped', floor)]
    toy = _toy([('completion', 'recall@10', 'vae', 'all', 0.6373), ('completion', 'recall@10', 'ease', 'all', 0.6373),
                *probe('region', 0.147, 0.12, 0.197, 0.172), *probe('season', 0.30, 0.25, 0.2, 0.31),
                ('density', 'iwae_nll_per_checklist_k100', 'vae', 'all', 20.7), ('density', 'nll_per_checklist', 'prevalence', 'all', 25.0),
                ('density', 'nll_per_checklist', 'context_prevalence', 'all', 16.9)])
    vs = vae_versus_baselines(toy)
    assert vs.verdict.tolist() == ['tie', 'loss', 'loss', 'loss'] and not vs.vae_wins.any()
    assert vs.strongest_baseline.tolist() == ['ease', 'random16', 'majority floor', 'context_prevalence']

def test_glossary_explains_every_name(evaluation):
    s, report = evaluation['summary'], evaluation['report']
    g = s[s.index('## Glossary'):]
    used = set(report[report.section != 'per_species'][['method', 'metric']].stack()) | {'locality_grouped', 'random16'}
    assert [n for n in sorted(used) if f'`{n}`' not in g] == []
    for name in ['vae_mc', 'iwae_nll_per_cell_k5', 'context_prevalence', 'ece', 'majority floor']: assert f'`{name}`' in g

PLOTS = ['checklist_map.png', 'latent_map.png', 'probe_confusion.png', 'recall_at_k.png', 'species_quality.png', 'reliability.png']

def test_plots_exist_and_are_linked_relatively(evaluation):
    s, e = evaluation['summary'], evaluation['dir']
    links = re.findall(r'!\[[^\]]+\]\(([^)]+)\)', s)
    assert links == PLOTS
    for name in links: assert (e/name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '## Species completed best and worst' in s and '| best |' in s and '| worst |' in s

class _Page(HTMLParser):
    def __init__(self):
        super().__init__(); self.images, self.tags = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == 'img': self.images.append(dict(attrs)['src'])

def test_html_report_is_one_file_with_its_images(evaluation):
    page = (evaluation['dir']/'report.html').read_text()
    p = _Page(); p.feed(page)
    assert page.startswith('<!DOCTYPE html>') and {'html', 'body', 'table', 'h1', 'h2'} <= set(p.tags)
    assert len(p.images) == len(PLOTS)
    for src in p.images:
        assert src.startswith('data:image/png;base64,')
        assert base64.b64decode(src.split(',', 1)[1])[:4] == b'\x89PNG'
    assert not list(evaluation['dir'].glob('.*'))   # written atomically: no temporary file left

def test_plots_use_distinct_colour_blind_safe_hues_and_legends_outside():
    import matplotlib; matplotlib.use('Agg')
    from matplotlib.colors import to_hex
    from ebird_vae.evaluation.report import OKABE_ITO, plot_checklist_map
    rng = np.random.default_rng(0)
    n = 300
    meta = pd.DataFrame(dict(latitude=rng.uniform(8, 12, n), longitude=rng.uniform(75, 77, n),
                             habitat=rng.choice(['forest', 'urban', 'wetland'], n)))
    fig = plot_checklist_map(rng.normal(size=(n, 4)), meta)
    fig.canvas.draw()
    assert len(fig.axes) == 2
    for ax in fig.axes:
        colours = [to_hex(c.get_facecolor()[0]) for c in ax.collections]
        assert len(set(colours)) == len(colours) == 3 and set(colours) <= {c.lower() for c in OKABE_ITO}
        legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.x0 >= frame.x1   # the legend is beside the data, not over it
