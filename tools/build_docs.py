#!/usr/bin/env python
"""Build the documentation site in `_site/` with Sphinx (MyST-NB, Book theme), without Quarto.

    python tools/build_docs.py            # process notebooks with nbdev, then build the site
    python tools/build_docs.py --no-proc  # reuse the existing `_proc/`

1. nbdev processes every notebook into `_proc/` (`show_doc` cells run and rendered to markdown,
   `#| hide` cells dropped), with a parameter table added to each `show_doc` entry.
2. `prepare` turns nbdev's Quarto dialect into MyST (front matter, cell options, callouts), names
   pages as nbdev does (`03_trainer.ipynb` -> `trainer.html`), and cleans what a reader must not
   see: progress bars, widget views (they need a live kernel), raw links inside signatures, the ` -`
   that marks a heading to keep out of the contents list (the heading stays, unlisted). The sidebar
   lists the tutorials (one section per folder) before the API pages.
3. Sphinx builds `_site/` from `_proc/` with the configuration in `docs/conf.py` (search, maths,
   navigation, links, theme), plus what `site_conf` adds: copy buttons on code (sphinx-copybutton, a dev
   requirement), `nbs/styles.css`, a favicon and the theme's colour mode. Saved outputs are shown; nothing
   is re-executed.
`nbs/_quarto.yml` is untouched: where Quarto exists, `nbdev_docs` still builds the usual site.
"""
import argparse, functools, json, os, re, shutil, sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROC, SITE, CONF = ROOT/'_proc', ROOT/'_site', ROOT/'docs'

# --- 1. nbdev: process notebooks, with a parameter table under each show_doc entry -------------------

def _cell(v, kind='docment'):
    "A markdown table cell: no pipes or newlines; no type shown for a bare `None` default"
    import inspect
    if v is inspect._empty or (v is None and kind != 'default') or v is type(None): return ''
    if kind == 'anno': v = v.__name__ if isinstance(v, type) else inspect.formatannotation(v).strip("'")
    elif kind == 'default': v = repr(v)
    return str(v).replace('|', '\\|').replace('\n', ' ')

def _exported(sym):
    "The package's own copy of `sym` (processing defines classes in `__main__`, where their source can't be read)"
    import importlib
    try:
        from nbdev.config import get_config
        syms = importlib.import_module(f'{get_config().lib_name}._modidx').d['syms']
    except Exception: return sym
    qn = getattr(sym, '__qualname__', getattr(sym, '__name__', ''))
    for mod, names in syms.items():
        if f'{mod}.{qn}' in names:
            try: return functools.reduce(getattr, qn.split('.'), importlib.import_module(mod))
            except Exception: pass
    return sym

def param_table(sym):
    "Markdown table of `sym`'s parameters from its docments, or '' if it has none"
    from fastcore.docments import DocmentTbl
    tbl = None
    for s in (sym, _exported(sym)):
        try: tbl = DocmentTbl(s)
        except Exception: continue
        if tbl.has_docment: break
    if tbl is None or not tbl.has_docment: return ''
    cols = list(tbl._columns)
    rows = ['|    | ' + ' | '.join(f'**{tbl._map[c]}**' for c in cols) + ' |',
            '| -- | ' + ' | '.join('--' for _ in cols) + ' |']
    for nm in tbl.params:
        if nm == 'self' or nm not in tbl.dm: continue
        rows.append(f'| {nm} | ' + ' | '.join(_cell(tbl.dm[nm][c], c) for c in cols) + ' |')
    if tbl.has_return:
        rows.append('| **Returns** | ' + ' | '.join(f'**{_cell(tbl.dm["return"][c], c)}**' if _cell(tbl.dm['return'][c], c) else ''
                                                 for c in cols) + ' |')
    return '\n'.join(rows)

def patch_show_doc():
    "Make nbdev's markdown renderer append a parameter table"
    from nbdev.showdoc import BasicMarkdownRenderer
    if getattr(BasicMarkdownRenderer, '_ebird_patched', False): return
    orig = BasicMarkdownRenderer._repr_markdown_
    def _repr_markdown_(self):
        md, tbl = orig(self), param_table(self.sym)
        return md + ('\n\n' + tbl if tbl else '')
    BasicMarkdownRenderer._repr_markdown_ = _repr_markdown_
    BasicMarkdownRenderer._ebird_patched = True

def notebooks(path):
    "Notebooks to publish under `path` (nbdev's rule: none in `_` or `.` folders)"
    return sorted(p.relative_to(path) for p in path.rglob('*.ipynb')
                  if not any(s.startswith(('_', '.')) for s in p.relative_to(path).parts))

def process_notebooks(nbs=None, proc=PROC):
    "Process each notebook into `proc` with nbdev, in this process (so the patch applies); return failures"
    import traceback
    from nbdev.config import get_config
    from nbdev.quarto import _proc_file
    from nbdev.serve_drv import main as proc_one
    patch_show_doc()
    nbs = Path(nbs or get_config().nbs_path)
    if proc.exists(): shutil.rmtree(proc)
    proc.mkdir(parents=True)
    failed = []
    for rel in notebooks(nbs):
        try: proc_one(_proc_file(nbs/rel, cache=proc, path=nbs))
        except Exception as e:
            os.environ.pop('IN_TEST', None)
            failed.append(rel)
            cause = ''.join(traceback.format_exception_only(e.__cause__)) if e.__cause__ else ''
            print(f'ERROR processing {rel}: {e}\n{cause}', file=sys.stderr)
    for f in nbs.rglob('*'):  # images the notebooks' markdown shows
        if f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.svg', '.gif') and not f.relative_to(nbs).parts[0].startswith(('_', '.')):
            (proc/f.relative_to(nbs)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, proc/f.relative_to(nbs))
    return failed

# --- 2. Quarto -> MyST, nbdev page names, clean outputs ---------------------------------------------

def page_name(rel, front):
    "nbdev's page for a notebook: `output-file`, else `03_trainer.ipynb` -> `trainer`"
    name = front.get('output-file') or re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())
    return (rel.parent/Path(name).stem).as_posix()

def front_matter(nb):
    "Pop the YAML front matter nbdev puts in the first raw cell"
    if nb.cells and nb.cells[0].cell_type == 'raw':
        m = re.match(r'\s*---\s*\n(.*?)\n\s*---', nb.cells[0].source, re.S)
        if m:
            nb.cells.pop(0)
            return yaml.safe_load(m.group(1)) or {}
    return {}

_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_TAGS = {('echo', 'false'): 'remove-input', ('output', 'false'): 'remove-output', ('include', 'false'): 'remove-cell'}

def cell_options(c):
    "Quarto cell options nbdev leaves in `_proc` (`#| echo: false`, ...) -> MyST-NB cell tags; True if `output: asis`"
    lines, opts = c.source.splitlines(), set()
    while lines and _DIRECTIVE.match(lines[0]):
        opts.add(tuple(v.lower() for v in _DIRECTIVE.match(lines.pop(0)).groups()))
    c.metadata.setdefault('tags', []).extend(_TAGS[o] for o in opts if o in _TAGS)
    c.source = '\n'.join(lines).strip('\n')
    if not c.source: c.metadata['tags'].append('remove-input')
    return ('output', 'asis') in opts and ('echo', 'false') in opts  # a markdown output meant to be part of the page

_CALLOUT = re.compile(r'^(:::+)\s*\{\.callout-(\w+)[^}]*\}\s*$', re.M)
_QATTR = re.compile(r'\]\(([^)\s]+)\)\{[^}]*\}')                      # [source](url){target=...}
_NBLINK = re.compile(r'\]\((?![a-z]+:|#)([^)\s]+?\.ipynb)(#[^)\s]*)?\)')  # [Trainer](03_trainer.ipynb#x)

def myst(md, here, names, base):
    "nbdev's Quarto markdown -> MyST; links to notebooks become nbdev doc links (docs/conf.py resolves those)"
    md = _CALLOUT.sub(lambda m: f'{m.group(1)}{{{m.group(2)}}}', md)
    md = dash_headings(_QATTR.sub(lambda m: f']({m.group(1)})', md))
    def nb_link(m):
        page = names.get(os.path.normpath(here.parent/m.group(1)))
        return f']({base}{page}.html{m.group(2) or ""})' if page else m.group(0)
    return _NBLINK.sub(nb_link, md)

_DASH_HEADING = re.compile(r'^(#{1,6})\s+(.*?\S)\s+-\s*$', re.M)
_FENCE = re.compile(r'^(```+|~~~+).*?^\1\s*$', re.M | re.S)

def dash_headings(md):
    "nbdev's hide-from-contents marker: a heading ending in ` -` is shown (without the ` -`) but not listed in the contents"
    def rubric(m): return f"```{{rubric}} {m.group(2)}\n:heading-level: {len(m.group(1))}\n:class: unlisted\n```"
    parts, last = [], 0
    for f in _FENCE.finditer(md):  # leave code blocks alone
        parts += [_DASH_HEADING.sub(rubric, md[last:f.start()]), f.group(0)]; last = f.end()
    return ''.join(parts + [_DASH_HEADING.sub(rubric, md[last:])])

_MDLINK = re.compile(r'\[`?([^\]`]+)`?\]\([^)\s]+\)')
def signature(md):
    "In show_doc's code blocks, markdown links print as text: keep the names; `NoneType` is no type"
    def block(m): return _MDLINK.sub(r'\1', m.group(0)).replace(':NoneType=None', '=None')
    md = re.sub(r'```python\n.*?```', block, md, flags=re.S)
    md = re.sub(r'\A\s*---\s*\n', '', md)  # show_doc's leading rule: a transition docutils won't nest in an output
    return re.sub(r'^(\|[^|\n]*\|)\s*NoneType\s*\|', r'\1  |', md, flags=re.M)

WIDGET_NOTE = '*(Interactive controls: run this notebook in Jupyter to use them.)*'
_PLAIN_LINES = re.compile(r'^(?:[^<>]|<p>)*$')

def clean_outputs(c):
    "Drop progress bars (fastprogress's HTML and its style block) and empty results; widgets -> a note"
    outs = []
    for o in c.get('outputs', []):
        d = o.get('data', {})
        html, plain = ''.join(d.get('text/html', '')), ''.join(d.get('text/plain', ''))
        if 'application/vnd.jupyter.widget-view+json' in d: o['data'] = {'text/markdown': WIDGET_NOTE}
        elif '<progress' in html or re.search(r'^\s*<style>[^<]*\bprogress\b', html): continue
        elif html and _PLAIN_LINES.match(html.strip()):  # a progress bar's log lines, joined by <p>
            o = nbformat.v4.new_output('stream', name='stdout', text=html.strip().replace('<p>', '\n') + '\n')
        elif o.get('output_type') in ('execute_result', 'display_data') and set(d) <= {'text/plain'} and not plain.strip(): continue
        if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = signature(''.join(o['data']['text/markdown']))
        outs.append(o)
    c.outputs = outs

def prepare(proc=PROC):
    "Rewrite `_proc` in place for Sphinx: one notebook per page, named as nbdev names it; return the pages"
    from nbdev.config import get_config
    cfg = get_config()
    base = cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/'
    nbs = {rel: nbformat.read(proc/rel, as_version=4) for rel in notebooks(proc)}
    fronts = {rel: front_matter(nb) for rel, nb in nbs.items()}
    names = {str(rel): page_name(rel, fronts[rel]) for rel in nbs}
    pages = []
    for rel, nb in nbs.items():
        fm, name = fronts[rel], names[str(rel)]
        nb.metadata.pop('widgets', None)
        nb.metadata['language_info'] = dict(name='python', pygments_lexer='ipython3')  # nbdev_clean drops it
        head = f"# {fm.get('title') or Path(name).name}"
        if fm.get('description'): head += f"\n\n```{{container}} description\n{fm['description']}\n```"
        cells = [nbformat.v4.new_markdown_cell(head)]
        for c in nb.cells:
            if c.cell_type == 'markdown' and c.source.startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
            if c.cell_type == 'code':
                asis = cell_options(c)
                clean_outputs(c)
                if asis:  # Quarto splices `output: asis` markdown into the page: show_doc entries become sections
                    c = nbformat.v4.new_markdown_cell('\n\n'.join(''.join(o['data']['text/markdown']) for o in c.outputs
                                                                  if 'text/markdown' in o.get('data', {})))
                else:
                    for o in c.outputs:
                        if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = myst(o['data']['text/markdown'], rel, names, base)
            if c.cell_type == 'markdown': c.source = myst(c.source, rel, names, base)
            cells.append(c)
        nb.cells = cells
        (proc/rel).unlink()
        nbformat.write(nb, proc/f'{name}.ipynb')
        pages.append(dict(path=f'{name}.html', title=str(fm.get('title') or name), source=rel.as_posix()))
    sections = {}  # the sidebar: one section per folder ("Tutorials", ...), then the top-level notebooks as "API"
    for p in pages:
        if p['path'] != 'index.html':
            folder = p['path'].split('/')[0] if '/' in p['path'] else ''
            sections.setdefault(folder.replace('_', ' ').capitalize() or 'API', []).append(p['path'][:-5])
    index = nbformat.read(proc/'index.ipynb', as_version=4)
    index.cells.append(nbformat.v4.new_markdown_cell(''.join(
        f"```{{toctree}}\n:hidden:\n:caption: {cap}\n\n" + '\n'.join(docs) + '\n```\n\n'
        for cap, docs in sorted(sections.items(), key=lambda kv: kv[0] == 'API'))))
    nbformat.write(index, proc/'index.ipynb')
    (proc/'_pages.json').write_text(json.dumps(pages, indent=1))
    return pages

# --- 3. Sphinx --------------------------------------------------------------------------------------

FAVICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#2f6f4f"/>
<path d="M8 19c3-7 9-10 16-8-2 1-3 3-3 5 0 4-4 7-9 6l-5 3 1-4z" fill="#fff"/></svg>
"""

def site_conf(build=PROC/'_build'):
    "A configuration folder for Sphinx: `docs/conf.py`, plus copy buttons, `nbs/styles.css`, a favicon and the colour mode"
    conf, static = build/'conf', build/'conf'/'_static'
    static.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT/'nbs'/'styles.css', static/'styles.css')
    (static/'favicon.svg').write_text(FAVICON)
    import importlib.util
    copy = importlib.util.find_spec('sphinx_copybutton') is not None
    if not copy: print('WARNING: sphinx-copybutton is not installed, so code blocks get no copy button: '
                       "pip install sphinx-copybutton (a dev requirement: pip install -e '.[dev]')", file=sys.stderr)
    (conf/'conf.py').write_text(f"""# Written by tools/build_docs.py: docs/conf.py, then what the build adds to it
import runpy
globals().update({{k: v for k, v in runpy.run_path({str(CONF/'conf.py')!r}).items() if not k.startswith('__')}})
extensions = [*extensions{", 'sphinx_copybutton'" if copy else ''}]
copybutton_selector = 'div.highlight pre:not(.cell_output pre)'   # code to run, not its outputs
html_static_path = [{str(CONF/'_static')!r}, {str(static)!r}]
html_css_files = [*html_css_files, 'styles.css']
html_favicon = {str(static/'favicon.svg')!r}   # else browsers ask for /favicon.ico, which is not there
html_context = {{**globals().get('html_context', {{}}), 'default_mode': 'auto'}}   # the theme's light/dark switch starts valid
""")
    return conf

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--no-proc', action='store_true', help='reuse the existing _proc/ instead of running nbdev')
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    failed = [] if args.no_proc else process_notebooks()
    pages = prepare() if not args.no_proc else json.loads((PROC/'_pages.json').read_text())
    from sphinx.cmd.build import build_main
    build = PROC/'_build'  # Sphinx's work files (and MyST-NB's, which go beside its output folder) stay in _proc
    rc = build_main(['-b', 'html', '-q', '-E', '-c', str(site_conf(build)), '-d', str(build/'doctrees'), str(PROC), str(build/'html')])
    if rc: return rc
    if SITE.exists(): shutil.rmtree(SITE)
    shutil.move(build/'html', SITE)
    (SITE/'pages.json').write_text(json.dumps(pages, indent=1))
    print(f'Built {len(pages)} pages in {SITE.relative_to(ROOT)}/: ' + ', '.join(p['path'] for p in pages)
          + f'\nTo read it: python -m http.server --directory {SITE.relative_to(ROOT)} 8000, then open http://localhost:8000')
    if failed:
        print('Not published (nbdev could not process them; an import cell or show_doc cell failed): '
              + ', '.join(map(str, failed)), file=sys.stderr)
        return 1

if __name__ == '__main__': sys.exit(main())
