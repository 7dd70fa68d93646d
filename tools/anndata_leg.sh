#!/usr/bin/env bash
# The optional AnnData extra (`pip install ebird_vae[anndata]`), tested where pip resolves it: on this Python, anndata
# 0.12 brings pandas below 3, so these tests run the package on the pandas 2 line while the main run uses pandas 3.
# Runs the .h5ad tests (export, embed --h5ad, to_anndata read back) and says which pandas and anndata it ran.
# Usage: bash tools/anndata_leg.sh [venv dir, default $TMPDIR/ebird_vae-venv-anndata]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-${TMPDIR:-/tmp}/ebird_vae-venv-anndata}
python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install --quiet torch==2.13.0 -e '.[anndata]' pytest hypothesis
python -c "import anndata, pandas, ebird_vae; print('anndata leg: anndata', anndata.__version__, '| pandas', pandas.__version__, '| ebird_vae from', ebird_vae.__file__)"
python -c "import scanpy" 2>/dev/null && echo "scanpy installed: its reader is used too" || echo "scanpy not installed (optional): anndata reads the files back"
pytest -q -p no:cacheprovider tests/test_anndata.py
