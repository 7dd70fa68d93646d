"""Sphinx configuration of the documentation site; `python tools/build_docs.py` runs it on `_proc/`.

Sphinx (search, navigation, page contents), MyST-NB (notebooks with their saved outputs, `$...$` maths),
the Book theme (responsive, dark mode) and MathJax 3 served from the site itself (sphinx-mathjax-offline:
no CDN). `setup` below resolves the absolute doc links nbdev writes into local links.
"""
import json, re
from configparser import ConfigParser
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
_cfg = ConfigParser(); _cfg.read(ROOT/'settings.ini')
cfg = _cfg['DEFAULT']

project = cfg['title']
author = cfg['author']
copyright = cfg['copyright']
html_title = cfg['title']

extensions = ['myst_nb', 'sphinx-mathjax-offline']
exclude_patterns = ['_*', '.*', '**/.ipynb_checkpoints']
nb_execution_mode = 'off'                 # show the outputs saved in the notebooks
nb_render_markdown_format = 'myst'         # show_doc's markdown: tables and maths too
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence']
myst_dmath_double_inline = True
smartquotes = False                        # defaults like 'cpu' are code: keep straight quotes
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.header']  # show_doc entries are h3 under the page's h1

html_theme = 'sphinx_book_theme'
html_static_path = ['_static']
html_css_files = ['site.css']
html_js_files = ['site.js']
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    'repository_url': cfg['git_url'], 'repository_branch': cfg['branch'], 'path_to_docs': cfg['nbs_path'],
    'use_repository_button': True, 'use_download_button': False, 'use_fullscreen_button': False,
    'show_toc_level': 2, 'home_page_in_toc': True,
}

# --- anchors as Quarto makes them ---------------------------------------------------------------------
# Pandoc's identifiers (`ranking_metrics`, `trainer.save`, `ranking-metrics`) rather than docutils' (which turns
# both `ranking_metrics` and "Ranking metrics" into `ranking-metrics`), so an API entry never loses its anchor to a
# prose heading, and the links nbdev writes (and the Quarto site's addresses) land on the entry itself.
def pandoc_id(text):
    s = re.sub(r'\s+', '-', re.sub(r'[^\w\s.-]', '', text.lower()).strip())
    return re.sub(r'^[^a-z]+', '', s)

def _is_entry(sec):
    "A show_doc entry's heading: a bare name (`Trainer.save`), not a prose heading or one that links to an entry"
    title = sec[0] if len(sec) and isinstance(sec[0], nodes.title) else None
    return title is not None and not any(title.findall(nodes.reference)) and re.fullmatch(r'[A-Za-z_][\w.]*', title.astext())

def quarto_anchors(app, doctree):
    used = set()
    for top in [s for s in doctree.children if isinstance(s, nodes.section)]:  # the page title: Quarto's id for it
        for i in top['ids']: doctree.ids.pop(i, None)
        top['ids'] = ['title-block-header']; doctree.ids['title-block-header'] = top
    sections = [s for s in doctree.findall(nodes.section) if s.parent is not doctree]
    for sec in sorted(sections, key=lambda s: not _is_entry(s)):  # entries first: `#trainer` is the class `Trainer`
        base = pandoc_id(sec[0].astext()) if len(sec) and isinstance(sec[0], nodes.title) else ''
        if not base: continue
        new, i = base, 0
        while new in used or (new in doctree.ids and doctree.ids[new] is not sec): i += 1; new = f'{base}-{i}'
        used.add(new)
        if sec['ids'][:1] != [new]:
            sec['ids'] = [new] + [x for x in sec['ids'] if x != new]
            doctree.ids[new] = sec

# --- nbdev's doc links -> local links ---------------------------------------------------------------
# nbdev links every backticked name it knows to https://<doc_host><doc_baseurl>/<page>.html#<name>, with Quarto's
# anchor (`trainer.save`, made above; docutils' `trainer-save` is tried too). A link to a name with no entry on its
# page (a private helper, a name documented elsewhere) would open the page at its top: keep the name, drop the link.
DOC_BASE = cfg['doc_host'].rstrip('/') + '/' + cfg['doc_baseurl'].strip('/') + '/'

def _ids(env, docname, _cache={}):
    if docname not in _cache:
        _cache[docname] = {i for n in env.get_doctree(docname).findall(nodes.Element) for i in n.get('ids', [])}
    return _cache[docname]

def resolve_doc_links(app, doctree, fromdoc):
    env = app.builder.env
    for ref in list(doctree.findall(nodes.reference)):
        uri = ref.get('refuri', '')
        if not uri.startswith(DOC_BASE): continue
        page, _, frag = uri[len(DOC_BASE):].partition('#')
        doc = page.removesuffix('.html') or 'index'
        anchor = next((a for a in (frag, nodes.make_id(frag)) if a in _ids(env, doc)), None) if doc in env.found_docs and frag else ''
        if doc not in env.found_docs or anchor is None:
            logger.verbose('%s: %s has no entry there; showing the name unlinked', fromdoc, uri)
            ref.replace_self(ref.children)
            continue
        ref['refuri'] = app.builder.get_relative_uri(fromdoc, doc) + (f'#{anchor}' if anchor else '')
        ref['classes'] = [c for c in ref.get('classes', []) if c != 'external'] + ['internal']
        ref['internal'] = True

# --- each page's source button opens its notebook, whatever the page is called ------------------------
def source_link(app, pagename, templatename, context, doctree):
    "Beside the repository button, a link to the page's notebook on GitHub (a menu of the two)"
    pages = Path(app.srcdir)/'_pages.json'  # written by tools/build_docs.py: page -> notebook
    sources = {d['path'][:-5]: d['source'] for d in json.loads(pages.read_text())} if pages.exists() else {}
    src, buttons = sources.get(pagename), context['header_buttons']
    repo = next((b for b in buttons if b.get('label') == 'source-repository-button'), None)
    if not (src and repo): return
    notebook = dict(type='link', url=f"{cfg['git_url']}/blob/{cfg['branch']}/{cfg['nbs_path']}/{src}", text='Source notebook',
                    tooltip='The notebook this page is made from', icon='fas fa-code', label='source-file-button')
    buttons[buttons.index(repo)] = dict(type='group', tooltip='Source', icon=repo['icon'], buttons=[repo, notebook],
                                        label='repository-buttons')

def setup(app):
    app.connect('doctree-read', quarto_anchors, priority=400)  # before Sphinx collects the page contents
    app.connect('doctree-resolved', resolve_doc_links)
    app.connect('html-page-context', source_link, priority=600)  # after the theme's buttons
