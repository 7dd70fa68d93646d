"""Build the documentation site and check it in a real browser (Debian's headless Chromium).

Skipped when /usr/bin/chromium or /usr/bin/chromedriver (Debian packages `chromium`,
`chromium-driver`) or the `selenium` package is missing; `tools/ci_docs.sh` installs them.
Set `EBIRD_DOCS_PREBUILT=1` to check an existing `_site/` instead of rebuilding it.
Screenshots of the index and of one tutorial page go to `_docs_check/`.
"""
import functools, importlib, warnings, json, os, re, shutil, subprocess, sys, threading, urllib.error, urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS, SITE, CHECK = ROOT/'nbs', ROOT/'_site', ROOT/'_docs_check'
CHROMIUM, CHROMEDRIVER = Path('/usr/bin/chromium'), Path('/usr/bin/chromedriver')
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1280,1600']
# Parameter tables the docs must show, whatever else the API pages hold
REQUIRED_TABLES = {'trainer.html': {'train_variational_autoencoder': ['model', 'num_epochs', 'learning_rate', 'noise_std']},
                   'models.html': {'variationalautoencoder': ['input_dimension', 'latent_dimension']}}

def _missing():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return 'Debian chromium/chromium-driver not installed (run tools/ci_docs.sh)'
    try: import selenium  # noqa: F401
    except ImportError: return 'the selenium package is not installed (run tools/ci_docs.sh)'

pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or '')

def source_notebooks():
    return sorted(p.relative_to(NBS) for p in NBS.rglob('*.ipynb')
                  if not any(s.startswith(('_', '.')) for s in p.relative_to(NBS).parts))

@pytest.fixture(scope='module')
def site():
    if not (os.environ.get('EBIRD_DOCS_PREBUILT') and (SITE/'pages.json').exists()):
        res = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py')], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, f'tools/build_docs.py failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}'
    pages = json.loads((SITE/'pages.json').read_text())
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = _Server(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield dict(pages=pages, base=f'http://127.0.0.1:{server.server_address[1]}/')
    server.shutdown(); server.server_close()

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for f in CHROMIUM_FLAGS + [f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}']: opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()

def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code

PAGE_INFO_JS = """
const abs = u => new URL(u, document.baseURI).href;
return {
  title: document.title,
  h1: (document.querySelector('main h1') || {}).textContent || '',
  nav: [...document.querySelectorAll('#sidebar a')].map(a => a.href),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  srcs: [...document.querySelectorAll('[src]')].map(e => abs(e.getAttribute('src')))
         .concat([...document.querySelectorAll('link[href]')].map(l => l.href)),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
  cells: [...document.querySelectorAll('.code_cell')].map(c => ({
      code: (c.querySelector('.input_area') || {textContent: ''}).textContent,
      imgs: [...c.querySelectorAll('.output_area img')].filter(i => i.complete && i.naturalWidth > 0).length})),
};"""

TABLE_JS = """
const hs = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].filter(h => h.id === arguments[0]);
if (!hs.length) return null;
return hs.flatMap(h => [...h.parentElement.querySelectorAll('table tbody tr td:first-child')].map(td => td.textContent.trim()));"""

def _public_documented(module_name):
    "Names in a module's `__all__` defined there whose parameters carry docments (show_doc gives them a table)"
    from fastcore.docments import DocmentTbl
    mod = importlib.import_module(module_name)
    out = {}
    for nm in getattr(mod, '__all__', []):
        sym = getattr(mod, nm, None)
        if getattr(sym, '__module__', None) != module_name or not callable(sym): continue
        try: tbl = DocmentTbl(sym)
        except Exception: continue
        if tbl.has_docment: out[nm] = [p for p in tbl.params if p != 'self' and p in tbl.dm][:3]
    return out

def _default_exp(nb):
    for c in json.loads((NBS/nb).read_text())['cells']:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
        if m: return m.group(1)

def test_docs_site(site, browser):
    pages, base = site['pages'], site['base']
    by_path = {p['path']: p for p in pages}
    published = {p['source'] for p in pages}
    unpublished = [str(nb) for nb in source_notebooks() if str(nb) not in published]
    assert not unpublished, f'notebooks with no page: {unpublished}'
    assert 'index.html' in by_path
    page_urls = {base + p['path'] for p in pages}
    problems, infos, ids = [], {}, {}
    for p in pages:
        url = base + p['path']
        browser.get(url)
        info = infos[p['path']] = browser.execute_script(PAGE_INFO_JS)
        ids[url] = set(info['ids'])
        if p['title'] not in info['title'] or not info['h1'].strip(): problems.append(f"{p['path']}: title {info['title']!r}, h1 {info['h1']!r}")
        missing_nav = page_urls - set(info['nav'])
        if missing_nav: problems.append(f"{p['path']}: navigation lacks {sorted(missing_nav)}")
        for img in info['images']:
            if not img['ok']: problems.append(f"{p['path']}: image did not load: {img['src']}")
    checked, dangling = {}, set()
    for p in pages:
        info = infos[p['path']]
        for link in info['links'] + info['srcs']:
            if urlparse(link).netloc != urlparse(base).netloc: continue
            target, frag = urldefrag(link)
            if target not in checked: checked[target] = _status(target)
            if checked[target] != 200: problems.append(f"{p['path']}: broken link {link} (HTTP {checked[target]})")
            elif frag and target in ids and frag not in ids[target]: dangling.add(f"{p['path']} -> {urlparse(link).path[1:]}#{frag}")
    assert not problems, '\n'.join(problems)
    # nbdev links every backticked name it knows, documented on the page or not; Quarto lands on the page top too
    if dangling: warnings.warn('links to anchors that do not exist (the page opens at its top): ' + ', '.join(sorted(dangling)))

    # API pages: a parameter table for each public function or class with docments
    for p in pages:
        mod = _default_exp(p['source']) if (NBS/p['source']).exists() else None
        expected = dict(REQUIRED_TABLES.get(p['path'], {}))
        if mod: expected.update({k.lower(): v for k, v in _public_documented(f'ebird_vae.{mod}').items()})
        if not expected: continue
        browser.get(base + p['path'])
        for anchor, params in expected.items():
            rows = browser.execute_script(TABLE_JS, anchor)
            if rows is None: problems.append(f"{p['path']}: no show_doc heading #{anchor}")
            elif not set(params) <= set(rows): problems.append(f"{p['path']}: #{anchor} table rows {rows} lack {params}")
    assert not problems, '\n'.join(problems)

    # Tutorials: every page shows plots; together they show training curves and latent maps
    tutorials = [p for p in pages if p['path'].startswith('tutorials/')]
    for p in tutorials:
        if not infos[p['path']]['images']: problems.append(f"{p['path']}: a tutorial without any plot")
    def shown(pattern):
        return [p['path'] for p in tutorials for c in infos[p['path']]['cells'] if c['imgs'] and re.search(pattern, c['code'], re.I)]
    if tutorials:
        if not shown(r'plot_training_curves|curves'): problems.append('no tutorial shows a training-curve plot')
        if not shown(r'latent'): problems.append('no tutorial shows a latent-space map')
    assert not problems, '\n'.join(problems)

    # Screenshots for CI artefacts
    if CHECK.exists(): shutil.rmtree(CHECK)
    CHECK.mkdir()
    shots = ['index.html', (tutorials[0]['path'] if tutorials else 'trainer.html' if 'trainer.html' in by_path else pages[-1]['path'])]
    for path in shots:
        browser.get(base + path)
        height = browser.execute_script('return document.body.scrollHeight')
        browser.set_window_size(1280, min(max(height, 800), 8000))
        assert browser.save_screenshot(str(CHECK/(path.replace('/', '_').replace('.html', '.png'))))
    browser.set_window_size(1280, 1600)
