"README.md is generated from nbs/index.ipynb and states the commands CI runs."
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_readme_in_sync_with_index_notebook():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_readme_commands_are_the_ones_ci_runs():
    readme, ci = (ROOT/'README.md').read_text(), (ROOT/'.ci'/'run').read_text()
    setup = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0"
    main_cmd = f"{setup} -e . && ebird-vae train --out runs/sample"
    test_cmd = f"{setup} -e '.[dev]' && pytest"
    assert main_cmd in readme and test_cmd in readme
    assert f"# README.md: {test_cmd}" in ci
    assert re.search(r"^pip install --quiet torch==2\.13\.0 -e '\.\[dev\]'$", ci, re.M)
    assert re.search(r"^pytest$", ci, re.M)
