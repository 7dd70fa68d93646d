#!/usr/bin/env python
"""Build the documentation site in `_site/` from the notebooks, without Quarto.

    python tools/build_docs.py            # process notebooks with nbdev, then render HTML
    python tools/build_docs.py --no-proc  # reuse the existing `_proc/`

`nbdev.quarto.proc_nbs` writes processed notebooks to `_proc/` (show_doc cells run and rendered
to markdown, `#| hide` cells dropped); nbconvert turns each one into an HTML page that shows the
outputs saved in the notebook (nothing is re-executed but the show_doc cells), and every page
gets the same sidebar. Page names follow nbdev's (`03_trainer.ipynb` -> `trainer.html`), so the
doc links nbdev writes (`https://<doc_host><doc_baseurl>/trainer.html#...`) become local links.
`nbs/_quarto.yml` is untouched: where Quarto exists, `nbdev_docs` still builds the usual site.
"""
import argparse, functools, html, os, json, re, shutil, sys
from pathlib import Path

import nbformat
import yaml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExtractOutputPreprocessor, TagRemovePreprocessor
from pygments.formatters import HtmlFormatter

ROOT = Path(__file__).resolve().parent.parent
PROC, SITE = ROOT/'_proc', ROOT/'_site'

# --- show_doc: add a parameter table ------------------------------------------------------------
# fastcore 1.14's show_doc renders the signature as a code block with the parameter comments in
# it; the docs also want the classic docments table (Type / Default / Details).

def _cell(v, kind='docment'):
    "A markdown table cell: no pipes or newlines"
    import inspect
    if v is inspect._empty or (v is None and kind != 'default'): return ''
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
    if tbl is None: return ''
    if not tbl.has_docment: return ''
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

def process_notebooks(nbs=None, proc=PROC):
    "Process each notebook into `proc` with nbdev, in this process (so the patch applies); return failures"
    import os, traceback
    from nbdev.config import get_config
    from nbdev.quarto import _proc_file
    from nbdev.serve_drv import main as proc_one
    patch_show_doc()
    nbs = Path(nbs or get_config().nbs_path)
    if proc.exists(): shutil.rmtree(proc)
    proc.mkdir(parents=True)
    failed = []
    for rel in notebooks(nbs):
        nb = nbs/rel
        job = _proc_file(nb, cache=proc, path=nbs)
        try: proc_one(job)
        except Exception as e:
            os.environ.pop('IN_TEST', None)
            failed.append(rel)
            print(f'ERROR processing {nb.relative_to(ROOT)}: {e}\n' + ''.join(traceback.format_exception_only(e.__cause__))
                  if e.__cause__ else f'ERROR processing {nb.relative_to(ROOT)}: {e}', file=sys.stderr)
    return failed

# --- pages -------------------------------------------------------------------------------------

def page_name(rel):
    "nbdev's page name for a notebook: `03_trainer.ipynb` -> `trainer.html`"
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html')

def notebooks(proc=PROC):
    "Processed notebooks to publish, relative to `proc`"
    return sorted(p.relative_to(proc) for p in proc.rglob('*.ipynb')
                  if not any(s.startswith(('_', '.')) for s in p.relative_to(proc).parts))

def front_matter(nb):
    "Pop the YAML front matter nbdev puts in the first raw cell"
    if nb.cells and nb.cells[0].cell_type == 'raw':
        m = re.match(r'\s*---\s*\n(.*?)\n\s*---', nb.cells[0].source, re.S)
        if m:
            nb.cells.pop(0)
            return yaml.safe_load(m.group(1)) or {}
    return {}

_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def apply_directives(nb):
    "Apply the Quarto cell options nbdev leaves in `_proc` (echo, output, include) and drop them"
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            lines, opts = c.source.splitlines(), {}
            while lines and _DIRECTIVE.match(lines[0]):
                k, v = _DIRECTIVE.match(lines.pop(0)).groups()
                opts[k.lower()] = v.lower()
            c.source = '\n'.join(lines).strip('\n')
            if opts.get('include') == 'false': continue
            if opts.get('echo') == 'false' or not c.source: c.metadata['ebird_hide_input'] = True
            if opts.get('output') == 'false': c.outputs = []
            c.outputs = [o for o in c.outputs if not _empty_output(o)]
            if c.metadata.get('ebird_hide_input') and not c.outputs: continue
        cells.append(c)
    nb.cells = cells

WIDGET_NOTE = '*(Interactive controls: run this notebook in Jupyter to use them.)*'

def drop_widgets(nb):
    "Widgets need a live kernel: replace their views with a note, and drop the saved widget state"
    nb.metadata.pop('widgets', None)
    for c in nb.cells:
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if 'application/vnd.jupyter.widget-view+json' in d:
                o['data'] = {'text/markdown': WIDGET_NOTE}

def _empty_output(o):
    if o.get('output_type') in ('execute_result', 'display_data'):
        d = o.get('data', {})
        return set(d) <= {'text/plain'} and not ''.join(d.get('text/plain', '')).strip()
    return False

_QATTR = re.compile(r'\]\(([^)\s]+)\)\{([^}]*)\}')
_FENCE = re.compile(r'^:::+\s*(\{[^}]*\}|[\w.-]+)?\s*$', re.M)

def quarto_markdown(md):
    "Turn the Quarto-only markdown nbdev emits into plain markdown/HTML"
    md = _QATTR.sub(lambda m: f']({m.group(1)})', md)  # [source](url){target=...} -> [source](url)
    def fence(m):
        cls = (m.group(1) or '').strip('{} ').replace('.', ' ').strip()
        return f'<div class="{html.escape(cls)}">\n' if cls else '</div>\n'
    return _FENCE.sub(fence, md)

def clean_markdown(nb):
    for c in nb.cells:
        if c.cell_type == 'markdown': c.source = quarto_markdown(c.source)
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if 'text/markdown' in d:
                d['text/markdown'] = quarto_markdown(''.join(d['text/markdown']))

def doc_base():
    "The absolute docs address nbdev writes into doc links"
    try:
        from nbdev.config import get_config
        cfg = get_config()
        return cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/'
    except Exception: return None

def relink(body, here, names):
    "Make doc links and links to notebooks relative to the page at `here`"
    up = '../' * (len(here.parts) - 1)
    base = doc_base()
    if base: body = body.replace(f'href="{base}', f'href="{up}')
    def nb_link(m):
        target = m.group(1)
        if re.match(r'^[a-z]+:', target): return m.group(0)
        path, _, frag = target.partition('#')
        key = os.path.normpath(here.parent/path)
        new = names.get(key)
        if new is None: return m.group(0)
        return f'href="{up}{new}' + (f'#{frag}' if frag else '') + '"'
    return re.sub(r'href="([^"]+?\.ipynb(?:#[^"]*)?)"', nb_link, body)

SIDEBAR_SECTIONS = (('Home', lambda r: r.name == 'index.ipynb' and len(r.parts) == 1),
                    ('Tutorials', lambda r: r.parts[0] == 'tutorials'),
                    ('API', lambda r: True))

def sections(pages):
    "Group pages into sidebar sections, in order"
    out, seen = [], set()
    for title, pred in SIDEBAR_SECTIONS:
        items = [p for p in pages if p['src'] not in seen and pred(p['src'])]
        seen |= {p['src'] for p in items}
        if items: out.append((title, items))
    return [out[i] for i in sorted(range(len(out)), key=lambda i: ['Home', 'API', 'Tutorials'].index(out[i][0]))]

CSS = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.55;color:#222}
#sidebar{position:fixed;top:0;left:0;bottom:0;width:250px;overflow-y:auto;background:#f6f8fa;border-right:1px solid #ddd;padding:1em}
#sidebar .site-title{font-weight:700;font-size:1.25em;text-decoration:none;color:#2c3e50}
#sidebar h4{margin:1.2em 0 .3em;color:#666;text-transform:uppercase;font-size:.8em;letter-spacing:.05em}
#sidebar ul{list-style:none;padding:0;margin:0}#sidebar li a{display:block;padding:.2em .4em;color:#2a6ebb;text-decoration:none;border-radius:4px}
#sidebar li a.active{background:#2a6ebb;color:#fff}
main{margin-left:290px;max-width:960px;padding:1em 2em 4em}
main h1.title{margin-bottom:.2em}p.description{color:#555;font-size:1.1em;margin-top:0}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;border-radius:4px}
.input_area pre{border-left:3px solid #2a6ebb}
.output_area pre{background:#fff;border-left:3px solid #ccc;white-space:pre-wrap}
.cell{margin:.6em 0}
table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
thead th{background:#f0f3f6}
img{max-width:100%}
p.source-link{float:right;font-size:smaller;margin:0}
.anchor-link{display:none}
.callout-note,.callout-tip,.callout-warning,.callout-important{border-left:4px solid #2a6ebb;background:#f3f7fc;padding:.2em 1em;margin:1em 0}
.callout-warning,.callout-important{border-color:#d9822b;background:#fdf6ee}
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {site}</title>
<link rel="stylesheet" href="{up}site.css">
</head><body>
<nav id="sidebar" aria-label="Site navigation">
<a class="site-title" href="{up}index.html">{site}</a>
{nav}
</nav>
<main>
<h1 class="title">{title}</h1>
{description}
{body}
</main></body></html>
"""

def render_nav(secs, here):
    up = '../' * (len(here.parts) - 1)
    out = []
    for title, items in secs:
        out.append(f'<h4>{title}</h4><ul>')
        for p in items:
            cls = ' class="active"' if p['out'] == here else ''
            out.append(f'<li><a{cls} href="{up}{p["out"].as_posix()}">{html.escape(p["title"])}</a></li>')
        out.append('</ul>')
    return '\n'.join(out)

def exporter():
    ex = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    ex.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    ex.register_preprocessor(ExtractOutputPreprocessor(extract_output_types={'image/png', 'image/jpeg', 'image/svg+xml'}),
                             enabled=True)
    return ex

def build(proc=PROC, site=SITE, site_title=None):
    if site.exists(): shutil.rmtree(site)
    site.mkdir(parents=True)
    if site_title is None:
        try:
            from nbdev.config import get_config
            site_title = get_config().title
        except Exception: site_title = 'Documentation'
    pages = []
    for rel in notebooks(proc):
        nb = nbformat.read(proc/rel, as_version=4)
        fm = front_matter(nb)
        out = Path(fm['output-file']).with_suffix('.html') if fm.get('output-file') else page_name(rel)
        if len(rel.parts) > 1 and len(out.parts) == 1: out = rel.parent/out
        pages.append(dict(src=rel, out=out, nb=nb, title=str(fm.get('title') or rel.stem),
                          description=str(fm.get('description') or '')))
    if not any(p['out'] == Path('index.html') for p in pages):
        readme = ROOT/'README.md'
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(readme.read_text() if readme.exists() else '')])
        pages.insert(0, dict(src=Path('index.ipynb'), out=Path('index.html'), nb=nb, title=site_title, description=''))
    names = {str(p['src']): p['out'].as_posix() for p in pages}
    secs = sections(pages)
    ex = exporter()
    for p in pages:
        nb, out = p['nb'], p['out']
        drop_widgets(nb)
        apply_directives(nb)
        for c in nb.cells:
            if c.metadata.pop('ebird_hide_input', False): c.metadata.setdefault('tags', []).append('remove_input')
        clean_markdown(nb)
        files_dir = out.with_suffix('').name + '_files'
        body, res = ex.from_notebook_node(nb, resources={'output_files_dir': files_dir, 'unique_key': out.stem})
        for name, data in res.get('outputs', {}).items():
            dest = site/out.parent/name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        body = relink(body, out, names)
        body = re.sub(r'(<h[1-6][^>]*\bid=")([^"]+)"', lambda m: m.group(1) + m.group(2).lower() + '"', body)
        body = re.sub(r'(<a class="anchor-link" href="#)([^"]+)"', lambda m: m.group(1) + m.group(2).lower() + '"', body)
        desc = re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(p['description']))
        desc = f'<p class="description">{desc}</p>' if desc else ''
        body = re.sub(r'<p>(<a href="[^"]+">source</a>)</p>', r'<p class="source-link">\1</p>', body)
        up = '../' * (len(out.parts) - 1)
        page = PAGE.format(title=html.escape(p['title']), site=html.escape(site_title), up=up,
                           nav=render_nav(secs, out), description=desc, body=body)
        (site/out).parent.mkdir(parents=True, exist_ok=True)
        (site/out).write_text(page)
    images = ROOT/'nbs'/'images'
    if images.exists(): shutil.copytree(images, site/'images')
    css = CSS + HtmlFormatter(style='default').get_style_defs('.highlight')
    (site/'site.css').write_text(css)
    (site/'pages.json').write_text(json.dumps([dict(path=p['out'].as_posix(), title=p['title'], source=p['src'].as_posix())
                                               for p in pages], indent=1))
    return pages

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--no-proc', action='store_true', help='reuse the existing _proc/ instead of running nbdev')
    args = ap.parse_args(argv)
    failed = [] if args.no_proc else process_notebooks()
    pages = build()
    print(f'Built {len(pages)} pages in {SITE.relative_to(ROOT)}/: ' + ', '.join(p['out'].as_posix() for p in pages))
    if failed:
        print('Not published (nbdev could not process them; an import cell or show_doc cell failed): '
              + ', '.join(map(str, failed)), file=sys.stderr)
        return 1

if __name__ == '__main__': sys.exit(main())
