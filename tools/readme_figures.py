"""The README's figures: the verdict table of `ebird-vae evaluate` on the run the README's first command makes.

    python tools/readme_figures.py runs/sample/evaluation/report.csv   # prints the table the README shows

tests/test_readme_figures.py runs the README's commands and checks that this table is the one in README.md.
"""
import sys
from pathlib import Path

import pandas as pd

from ebird_vae.evaluation import vae_versus_baselines


MARK = '<!-- figures: tools/readme_figures.py -->'


def _number(v: float) -> str: return f'{v:.3f}'


def figures_table(report_csv) -> list[str]:
    "The markdown lines of the verdict table of the report in `report_csv`, values to 3 decimals."
    vt = vae_versus_baselines(pd.read_csv(report_csv))
    lines = ['| comparison | verdict | VAE | strongest baseline |', '|---|---|---|---|']
    for r in vt.itertuples():
        lines.append(f'| {r.comparison} | {r.verdict} | {_number(r.vae)} | {r.strongest_baseline} {_number(r.baseline)} |')
    return lines


def readme_table(readme) -> list[str]:
    "The verdict table's lines as README.md shows them (the first table after the marker)."
    return _first_table(Path(readme).read_text().split(MARK, 1)[1])


def cells(lines: list[str], n: int = 4) -> list[list[str]]:
    "The first `n` cells of each data row of a markdown table (the README adds the benchmark's figures as a fifth column)."
    return [[c.strip() for c in l.strip('|').split('|')[:n]] for l in lines[2:]]


def _first_table(text: str) -> list[str]:
    lines = text.strip().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('|'))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith('|')), len(lines))
    return lines[start:end]


if __name__ == '__main__':
    print('\n'.join(figures_table(sys.argv[1])))
