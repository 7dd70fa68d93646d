#!/usr/bin/env bash
# The data layer's tests on the lowest numpy, pandas and pyarrow that settings.ini allows (`requirements`: pkg>=X is
# installed as pkg==X.*), in a venv of their own, so that a lower bound the package declares is one it was tested on.
# Runs the data notebooks (00-00f) and the data layer's test files (corruption, reader, cleaning, release forms, data cases). Usage: bash tools/min_versions.sh [venv dir, default $TMPDIR/ebird_vae-venv-min]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-${TMPDIR:-/tmp}/ebird_vae-venv-min}

pins=$(python3 - <<'EOF'
import configparser, re
cfg = configparser.ConfigParser(interpolation=None); cfg.read('settings.ini')
d = cfg['DEFAULT']
lowest = {'numpy', 'pandas', 'pyarrow'}
out = []
for req in d['requirements'].split():
    name = re.match(r'[A-Za-z0-9_.-]+', req).group(0)
    low = re.search(r'>=([0-9.]+)', req)
    out.append(f'{name}=={low.group(1)}.*' if name in lowest and low else req)
out += [r for r in d['dev_requirements'].split() if re.match(r'(nbdev|execnb|pytest|hypothesis)\b', r)]
print(' '.join(f"'{r}'" for r in out))
EOF
)
echo "installing into $VENV: $pins"
python3 -m venv "$VENV"
. "$VENV/bin/activate"
eval pip install --quiet torch==2.13.0 "$pins"
pip install --quiet --no-deps -e .
python -c "import numpy, pandas, pyarrow, torch, ebird_vae; print('lowest versions: numpy', numpy.__version__, '| pandas', pandas.__version__, '| pyarrow', pyarrow.__version__, '| torch', torch.__version__, '| ebird_vae from', ebird_vae.__file__)"
pytest -q -p no:cacheprovider tests/test_corruption.py tests/test_data_cases.py tests/test_cleaning_cases.py \
  tests/test_reader_cases.py tests/test_release_forms.py \
  "tests/test_notebooks.py::test_notebook[00_data_layer.ipynb]" "tests/test_notebooks.py::test_notebook[00a1_arrow.ipynb]" \
  "tests/test_notebooks.py::test_notebook[00a_schema.ipynb]" "tests/test_notebooks.py::test_notebook[00b_writer.ipynb]" \
  "tests/test_notebooks.py::test_notebook[00c_synthetic.ipynb]" "tests/test_notebooks.py::test_notebook[00d_reader.ipynb]" \
  "tests/test_notebooks.py::test_notebook[00e_ebd.ipynb]" "tests/test_notebooks.py::test_notebook[00f_data.ipynb]"
