"Run every notebook in `nbs/` as a test, the way `nbdev_test` does (cells flagged `#| slow` are skipped)."
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

NBS = Path(__file__).resolve().parent.parent/'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_notebook(nb, monkeypatch):
    flags = get_config().tst_flags.split()
    monkeypatch.chdir(nb.parent)
    ok, duration = run_notebook(nb, skip_flags=flags, basepath=str(NBS.parent))
    assert ok, f'{nb.name} failed; run `nbdev_test --path {nb}` to see the failing cell'
