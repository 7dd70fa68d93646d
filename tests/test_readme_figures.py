"""Issue 20: the README's figures are what its own commands give on a fresh machine of this kind.

Runs the README's first command (`ebird-vae train --out runs/sample`, here into a temporary folder), then `embed` and
`evaluate` as the README shows them, and compares the verdict table `evaluate` writes with the one in README.md (values
to 3 decimals; the README's fifth column, the benchmark's 3-seed figures, is not a result of these commands).
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('readme_figures', ROOT/'tools'/'readme_figures.py')
readme_figures = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(readme_figures)
CLI = [sys.executable, '-m', 'ebird_vae.cli']


def _run(*args, cwd):
    r = subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_the_readme_figures_are_what_its_commands_give(tmp_path):
    readme = (ROOT/'README.md').read_text()
    out = _run('train', '--out', 'runs/sample', cwd=tmp_path)
    last = [l for l in out.splitlines() if l.startswith('Done:')][0]          # e.g. "Done: 80 epochs, final validation loss 46.0420. ..."
    assert last.split('. Outputs')[0] in readme, last
    embedded = _run('embed', 'runs/sample/final_model.pt', '--output', 'runs/sample/embeddings.parquet', cwd=tmp_path)
    assert [l for l in embedded.splitlines() if l.startswith('Embedded ')][0].split(' ->')[0] in readme
    _run('evaluate', 'runs/sample/final_model.pt', '--output-dir', 'runs/sample/evaluation', cwd=tmp_path)
    got = readme_figures.figures_table(tmp_path/'runs/sample/evaluation/report.csv')
    assert readme_figures.cells(got) == readme_figures.cells(readme_figures.readme_table(ROOT/'README.md'))
