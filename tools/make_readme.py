"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which these machines lack).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md is out of date
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NB, README = ROOT/'nbs'/'index.ipynb', ROOT/'README.md'

def _source(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _directives(src):
    return {m.group(1) for m in re.finditer(r'^#\|\s*([\w-]+)', src, re.M)}

def render(nb:dict) -> str:
    parts = []
    for cell in nb['cells']:
        src = _source(cell).strip()
        if not src: continue
        if cell['cell_type'] == 'markdown':
            parts.append(re.sub(r'\]\((?!https?:|#|/)([^)]+\.(?:ipynb|png|jpg|svg))\)', r'](nbs/\1)', src))
        elif cell['cell_type'] == 'code':
            flags = _directives(src)
            if {'hide', 'exporti', 'export'} & flags or 'default_exp' in flags: continue
            code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
            if 'hide_input' not in flags and code: parts.append(f'```python\n{code}\n```')
            if 'hide_output' in flags: continue
            for out in cell.get('outputs', []):
                text = out.get('text') or out.get('data', {}).get('text/plain')
                if text: parts.append('```\n' + (''.join(text) if isinstance(text, list) else text).rstrip() + '\n```')
    return '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render(json.loads(NB.read_text(encoding='utf-8')))
    if '--check' in sys.argv:
        if README.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py` and commit.')
        print('README.md matches nbs/index.ipynb')
    else:
        README.write_text(text, encoding='utf-8')
        print(f'wrote {README.relative_to(ROOT)}')
