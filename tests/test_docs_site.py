"""Build the documentation site and check it as a reader would, in a real browser (Debian's headless Chromium).

Skipped when /usr/bin/chromium or /usr/bin/chromedriver (Debian packages `chromium`, `chromium-driver`) or the
`selenium` package is missing; `tools/ci_docs.sh` installs them. Set `EBIRD_DOCS_PREBUILT=1` to check an
existing `_site/` instead of rebuilding it. Screenshots at desktop and phone width (the index, the models page's
maths, tutorial 2's grid, the phone menu) go to `_docs_check/`.
Each test names every page and item that fails it, so one run lists all the defects.
The reader's-view tests run at desktop (1280 px) and phone (400 px) width: code blocks and tables not cut (each
scrolls in its own box), copy buttons on code, formulas inside the window, no ` -` headings, tutorials first in the
navigation, nothing written to the browser's console.
"""
import functools, importlib, importlib.util, json, os, re, shutil, subprocess, sys, threading, time, urllib.error, urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS, SITE, CHECK = ROOT/'nbs', ROOT/'_site', ROOT/'_docs_check'
CHROMIUM, CHROMEDRIVER = Path('/usr/bin/chromium'), Path('/usr/bin/chromedriver')
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--hide-scrollbars']
DESKTOP, PHONE = (1280, 900), (400, 860)
# Parameter tables the docs must show, whatever else the API pages hold
REQUIRED_TABLES = {'trainer.html': {'train_variational_autoencoder': ['model', 'num_epochs', 'learning_rate', 'noise_std']},
                   'models.html': {'VariationalAutoencoder': ['input_dimension', 'latent_dimension']}}
# What a reader must never see in a page's text: machine paths, wrapped internals, run-together progress lines
FORBIDDEN_TEXT = {'a temporary-folder path': r'(?:/tmp/)?\btmp[a-z0-9_]{8}\b|/tmp/|/var/folders/',
                  'a checkout path': re.escape(str(ROOT)) + r'|/work/|/home/\w+/',
                  '`__wrapped__`': r'__wrapped__', '`NoneType` as a type': r'\bNoneType\b',
                  'progress lines run together': r'\d\.\d+sEpoch',
                  'a markdown link printed raw': r'\[[^\]\n]*\]\((?:https?:|\.{0,2}/|[\w/.-]+\.(?:html|ipynb))[^)\s]*\)'}
# Raw TeX left in visible text: $...\cmd...$, \(...\), \[...\]
RAW_MATH = r'\$[^$\n]*\\[A-Za-z]+[^$\n]*\$|\\\(.+?\\\)|\\\[.+?\\\]'
# A code cell whose point is a figure: a top-level call of a plotting function
PLOT_CALL = re.compile(r'^(?:\w+\s*=\s*)?(?:plot_\w+|show_\w+|plt\.show)\(', re.M)

def _missing():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return 'Debian chromium/chromium-driver not installed (run tools/ci_docs.sh)'
    try: import selenium  # noqa: F401
    except ImportError: return 'the selenium package is not installed (run tools/ci_docs.sh)'

pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or '')

def source_notebooks():
    return sorted(p.relative_to(NBS).as_posix() for p in NBS.rglob('*.ipynb')
                  if not any(s.startswith(('_', '.')) for s in p.relative_to(NBS).parts))

def anchor(name):
    "The anchor of an API entry, as Quarto (and docs/conf.py) makes it: `Trainer.save` -> `trainer.save`"
    return name.lower()

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)

@pytest.fixture(scope='module')
def site():
    if not (os.environ.get('EBIRD_DOCS_PREBUILT') and (SITE/'pages.json').exists()):
        res = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py')], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, f'tools/build_docs.py failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}'
    pages = json.loads((SITE/'pages.json').read_text())
    server = _Server(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield dict(pages=pages, base=f'http://127.0.0.1:{server.server_address[1]}/')
    server.shutdown(); server.server_close()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})  # the console, for test_no_console_errors
    for f in CHROMIUM_FLAGS + [f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}']: opts.add_argument(f)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()

def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code

def load(browser, url, size=DESKTOP):
    "Open `url` at `size` and wait until MathJax (where the page has maths) has typeset it"
    browser.set_window_size(*size)
    browser.get(url)
    browser.execute_async_script("""const done = arguments[arguments.length - 1];
      const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise.then(() => done(1)) : done(0);
      document.readyState === 'complete' ? setTimeout(wait, 50) : window.addEventListener('load', () => setTimeout(wait, 50));""")

PAGE_INFO_JS = """
const abs = u => new URL(u, document.baseURI).href;
const skip = n => n.parentElement.closest('pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml');
const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
let prose = [], n; while ((n = walker.nextNode())) if (!skip(n)) prose.push(n.textContent);
return {
  title: document.title,
  h1: (document.querySelector('main h1') || {}).textContent || '',
  html: document.documentElement.outerHTML,
  text: (document.querySelector('main') || document.body).innerText,
  prose: prose.join(' '),
  nav: [...document.querySelectorAll('.bd-sidebar-primary nav a')].map(a => a.href),
  toc: [...document.querySelectorAll('.bd-sidebar-secondary nav.page-toc a, #pst-page-toc-nav a')].map(a => a.href),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  srcs: [...document.querySelectorAll('[src]')].map(e => abs(e.getAttribute('src')))
         .concat([...document.querySelectorAll('link[href]')].map(l => l.href)),
  loaded: performance.getEntriesByType('resource').map(r => r.name),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
  maths: document.querySelectorAll('mjx-container').length,
  tables: Object.fromEntries([...document.querySelectorAll('section[id]')].map(s => [s.id,
      [...(s.querySelector('table') || {querySelectorAll: () => []}).querySelectorAll('tbody tr td:first-child')]
        .map(td => td.textContent.trim())])),  // an entry's first table: its parameters
  cells: [...document.querySelectorAll('div.cell')].map(c => ({
      code: (c.querySelector('.cell_input') || {textContent: ''}).textContent,
      imgs: [...c.querySelectorAll('.cell_output img')].filter(i => i.complete && i.naturalWidth > 0).length})),
};"""

@pytest.fixture(scope='module')
def infos(site, browser):
    "What each page shows at desktop width"
    out = {}
    for p in site['pages']:
        load(browser, site['base'] + p['path'])
        out[p['path']] = browser.execute_script(PAGE_INFO_JS)
    return out

def _report(problems, what):
    assert not problems, f'{len(problems)} {what}:\n' + '\n'.join(problems)

def test_every_notebook_has_a_page_with_title_navigation_and_contents(site, infos):
    pages, base = site['pages'], site['base']
    published = {p['source'] for p in pages}
    assert not [nb for nb in source_notebooks() if nb not in published], 'notebooks with no page'
    assert 'index.html' in {p['path'] for p in pages}
    page_urls, problems = {base + p['path'] for p in pages}, []
    for p in pages:
        info = infos[p['path']]
        if p['title'] not in info['title'] or not info['h1'].strip(): problems.append(f"{p['path']}: title {info['title']!r}, h1 {info['h1']!r}")
        missing_nav = page_urls - {urldefrag(u)[0] for u in info['nav']}
        if missing_nav: problems.append(f"{p['path']}: the sidebar lacks {sorted(u[len(base):] for u in missing_nav)}")
        if not info['toc']: problems.append(f"{p['path']}: no contents list")
    _report(problems, 'pages without their title, navigation or contents')

def test_links_images_and_no_external_resources(site, infos):
    "Every link and image works, every anchor exists, and nothing is fetched from outside the site (no CDN)"
    base, problems, checked, ids = site['base'], [], {}, {}
    for path, info in infos.items():
        ids[site['base'] + path] = set(info['ids'])
        problems += [f"{path}: image did not load: {i['src']}" for i in info['images'] if not i['ok']]
        problems += [f"{path}: fetched from outside the site: {u}" for u in set(info['srcs'] + info['loaded'])
                     if urlparse(u).scheme in ('http', 'https') and urlparse(u).netloc != urlparse(base).netloc]
    for path, info in infos.items():
        for link in set(info['links']):
            if urlparse(link).netloc != urlparse(base).netloc: continue
            target, frag = urldefrag(link)
            if target not in checked: checked[target] = _status(target)
            if checked[target] != 200: problems.append(f"{path}: broken link {link} (HTTP {checked[target]})")
            elif frag and target in ids and frag not in ids[target]: problems.append(f"{path}: link to a missing anchor {link[len(base):]}")
    _report(problems, 'broken links, images or external resources')

def test_no_raw_maths(infos):
    problems = [f"{path}: raw TeX {m.group(0)[:80]!r}" for path, info in infos.items() for m in re.finditer(RAW_MATH, info['prose'])]
    assert infos['models.html']['maths'] > 0, 'the models page shows no typeset maths'
    _report(problems, 'formulas shown as TeX source')

def test_clean_outputs(infos):
    "No progress bars, machine paths, wrapped internals, raw links or `NoneType`; every plotting cell shows its plot"
    problems = [f"{path}: a progress bar (<progress) in the page" for path, info in infos.items() if '<progress' in info['html']]
    for path, info in infos.items():
        for what, pat in FORBIDDEN_TEXT.items():
            problems += [f"{path}: {what}: ...{info['text'][max(0, m.start()-60):m.end()+30]!r}..." for m in re.finditer(pat, info['text'])]
        problems += [f"{path}: a plotting cell shows no plot: {c['code'].strip()[:100]!r}" for c in info['cells']
                     if PLOT_CALL.search(c['code']) and not re.search(r'^\s*def ', c['code'], re.M) and not c['imgs']]
    _report(problems, 'outputs a reader should not see (or plots missing)')

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

def test_api_entries_have_parameter_tables(site, infos):
    problems = []
    for p in site['pages']:
        mod = _default_exp(p['source']) if (NBS/p['source']).exists() else None
        expected = dict(REQUIRED_TABLES.get(p['path'], {}))
        if mod: expected.update(_public_documented(f'ebird_vae.{mod}'))
        tables = infos[p['path']]['tables']
        for name, params in expected.items():
            rows = tables.get(anchor(name))
            if rows is None: problems.append(f"{p['path']}: no entry #{anchor(name)} for {name}")
            elif not set(params) <= set(rows): problems.append(f"{p['path']}: #{anchor(name)} table rows {rows} lack {params}")
    _report(problems, 'API entries without their parameter table')

def test_tutorials_show_their_figures(site, infos):
    tutorials = [p['path'] for p in site['pages'] if p['path'].startswith('tutorials/')]
    problems = [f"{t}: a tutorial without any plot" for t in tutorials if not infos[t]['images']]
    shown = lambda pat: [t for t in tutorials for c in infos[t]['cells'] if c['imgs'] and re.search(pat, c['code'], re.I)]
    if not shown(r'plot_training_curves|curves'): problems.append('no tutorial shows a training-curve plot')
    if not shown(r'latent'): problems.append('no tutorial shows a latent-space map')
    grid = next((t for t in tutorials if 'noise' in t), None)
    if grid is None: problems.append('no noise x learning-rate tutorial')
    else:  # the static figure of the whole grid, in the section of the live controls
        cells = [c for c in infos[grid]['cells'] if c['imgs'] and re.search(r'NOISES', c['code']) and re.search(r'LEARNING_RATES', c['code'])]
        if not cells: problems.append(f'{grid}: no static figure of the whole noise x learning-rate grid')
    _report(problems, 'tutorial figures missing')

def test_search_finds_the_training_function_and_lands_on_its_entry(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    load(browser, site['base'] + 'index.html')
    next(b for b in browser.find_elements(By.CSS_SELECTOR, '.search-button-field, button.search-button') if b.is_displayed()).click()
    box = WebDriverWait(browser, 10).until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, 'input[name="q"]') if e.is_displayed()), None))
    box.send_keys('train_variational_autoencoder', Keys.ENTER)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#search-results li a'))
    hits = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#search-results li a')]
    entry = next((h for h in hits if urldefrag(h)[0].endswith('/trainer.html') and urldefrag(h)[1] == 'train_variational_autoencoder'), None)
    assert entry, f'search results do not lead to the entry trainer.html#train_variational_autoencoder: {hits[:10]}'
    browser.find_element(By.CSS_SELECTOR, f'#search-results li a[href$="trainer.html#train_variational_autoencoder"]').click()
    WebDriverWait(browser, 10).until(lambda d: urldefrag(d.current_url)[0].endswith('/trainer.html'))
    time.sleep(0.5)
    top = browser.execute_script("const e = document.getElementById('train_variational_autoencoder'); return e && e.getBoundingClientRect().top")
    assert top is not None and 0 <= top < DESKTOP[1] / 2, f'the entry is not at the top of the window after the click (top={top})'

OVERFLOW_JS = "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"

def test_phone_width_no_sideways_scroll_and_menu_button(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    problems = []
    for p in site['pages']:
        load(browser, site['base'] + p['path'], PHONE)
        wide, view = browser.execute_script(OVERFLOW_JS)
        if wide > view: problems.append(f"{p['path']}: scrolls sideways at {PHONE[0]} px ({wide} px wide)")
    for path in ('index.html', 'trainer.html'):
        load(browser, site['base'] + path, PHONE)
        nav_links = lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, '.bd-sidebar-primary nav a') if a.is_displayed()]
        if nav_links(browser): problems.append(f'{path}: at {PHONE[0]} px the navigation shows without being asked for'); continue
        buttons = [b for b in browser.find_elements(By.CSS_SELECTOR, 'button.primary-toggle') if b.is_displayed()]
        if not buttons: problems.append(f'{path}: no menu button at {PHONE[0]} px'); continue
        buttons[0].click()
        try: WebDriverWait(browser, 5).until(lambda d: len(nav_links(d)) >= len(site['pages']) - 1)
        except Exception: problems.append(f'{path}: the menu button does not open the navigation')
    _report(problems, 'phone-width problems')

def test_screenshots(site, browser):
    "Desktop and phone screenshots of the index, the models page's maths and tutorial 2's grid, for a person to look at"
    if CHECK.exists(): shutil.rmtree(CHECK)
    CHECK.mkdir()
    grid = next(p['path'] for p in site['pages'] if 'noise' in p['path'])
    shots = [('index', 'index.html', None),
             ('models_maths', 'models.html', "return document.querySelector('mjx-container')"),
             ('tutorial2_grid', grid, "return [...document.querySelectorAll('div.cell')].filter(c => /NOISES/.test(c.textContent) && c.querySelector('.cell_output img')).pop()")]
    for name, path, target in shots:
        for label, size in (('desktop', DESKTOP), ('phone', PHONE)):
            load(browser, site['base'] + path, size)
            if target:
                el = browser.execute_script(target)
                assert el is not None, f'{path}: nothing to screenshot for {name}'
                browser.execute_script("arguments[0].scrollIntoView(); window.scrollBy(0, -80)", el)
                time.sleep(0.3)
            assert browser.save_screenshot(str(CHECK/f'{name}_{label}.png'))
    from selenium.webdriver.common.by import By
    load(browser, site['base'] + 'index.html', PHONE)  # and the navigation opened from the phone's menu button
    next(b for b in browser.find_elements(By.CSS_SELECTOR, 'button.primary-toggle') if b.is_displayed()).click()
    time.sleep(0.5)
    assert browser.save_screenshot(str(CHECK/'index_phone_menu.png'))

# --- the reader's view at desktop and phone width: code, maths, headings, navigation, console ----------------------

VIEW_JS = """
const vw = document.documentElement.clientWidth, main = document.querySelector('main') || document.body;
const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
const text = e => (e.innerText || e.textContent).trim().slice(0, 60).replace(/\\s+/g, ' ');
// Where an element's content is out of the reader's reach. Its own box may scroll sideways (the element itself, or a
// box around it that holds no heading) if that box fits in the window; a page section that scrolls as a whole does not
// count, nor does a box that hides what sticks out.
const name = b => b.tagName.toLowerCase() + [...b.classList].map(c => '.' + c).join('');
function cut(e) {
  const inline = getComputedStyle(e).display === 'inline', er = e.getBoundingClientRect();
  const m = e.matches('mjx-container') && e.querySelector('mjx-math');  // a formula's own extent (MathJax's hidden MathML is wider)
  const right = m ? m.getBoundingClientRect().right : er.right + (inline ? 0 : Math.max(0, e.scrollWidth - e.clientWidth - 1));
  if (!inline && !scrolls(e) && getComputedStyle(e).overflowX !== 'visible' && right > er.right + 1)
    return 'its content is clipped by its own box, which does not scroll';
  for (let b = inline ? e.parentElement : e; b && b !== document.body; b = b.parentElement) {
    const r = b.getBoundingClientRect();
    if (scrolls(b) && b.querySelector('h1, h2, h3, h4, h5, h6'))
      return right > r.right + 1 ? `only the whole ${name(b)} scrolls sideways to show it (to ${Math.round(right)} px), not a box of its own` : null;
    if (scrolls(b)) return r.right > vw + 1 ? `its scrolling box ends at ${Math.round(r.right)} px, past the window` : null;
    if (getComputedStyle(b).display !== 'inline' && getComputedStyle(b).overflowX !== 'visible' && right > r.right + 1) return `cut at ${Math.round(r.right)} px by a ${name(b)} that does not scroll`;
  }
  return right > vw + 1 ? `it ends at ${Math.round(right)} px, past the window` : null;
}
const code = [...main.querySelectorAll('div.highlight pre')];
const runnable = code.filter(p => !p.closest('.cell_output'));
return {
  width: vw,
  code: code.map(p => [text(p), cut(p)]).filter(x => x[1]),
  tables: [...main.querySelectorAll('table')].map(t => [text(t), cut(t)]).filter(x => x[1]),
  maths: [...main.querySelectorAll('mjx-container')].map(m => [m.getAttribute('display') ? 'display' : 'inline', text(m), cut(m)]).filter(x => x[2]),
  n_code: runnable.length,
  no_copy: runnable.filter(p => !p.parentElement.querySelector('button.copybtn')).map(text),
  headings: [...main.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => h.textContent.replace(/[#\u00b6]\\s*$/, '').trim()),
  toc: [...document.querySelectorAll('.bd-sidebar-secondary nav.page-toc a, #pst-page-toc-nav a')].map(a => a.textContent.trim()),
  nav: [...document.querySelectorAll('.bd-sidebar-primary nav a')].map(a => a.href),
  next: (document.querySelector('a.right-next') || {}).href || null,
  icon: (document.querySelector('link[rel~="icon"]') || {}).href || null,
  mode: document.documentElement.dataset.mode,
};"""

@pytest.fixture(scope='module', params=[DESKTOP, PHONE], ids=[f'{DESKTOP[0]}px', f'{PHONE[0]}px'])
def views(request, site, browser):
    "What each page shows at desktop and at phone width, and what it wrote to the browser's console"
    size, out = request.param, {}
    browser.get_log('browser')  # start from an empty console
    for p in site['pages']:
        load(browser, site['base'] + p['path'], size)
        time.sleep(0.2)  # the theme's scripts run after the load event
        browser.execute_script('localStorage.clear(); sessionStorage.clear()')  # so each page is a first visit
        out[p['path']] = browser.execute_script(VIEW_JS)
        out[p['path']]['console'] = [f"{e['level']}: {e['message']}" for e in browser.get_log('browser') if e['level'] in ('SEVERE', 'WARNING')]
    return dict(size=size, pages=out)

def test_code_and_tables_scroll_in_their_own_box_with_copy_buttons(views):
    "No code block or table is cut at the page edge (each scrolls in its own box), and every code block has a copy button"
    w, problems = views['size'][0], []
    for path, v in views['pages'].items():
        problems += [f"{path} at {w} px: code block {t!r}: {why}" for t, why in v['code']]
        problems += [f"{path} at {w} px: table {t!r}: {why}" for t, why in v['tables']]
        problems += [f"{path} at {w} px: code block without a copy button: {t!r}" for t in v['no_copy']]
    assert sum(v['n_code'] for v in views['pages'].values()) > 20, 'hardly any code blocks found: is the selector right?'
    if any(v['no_copy'] for v in views['pages'].values()) and importlib.util.find_spec('sphinx_copybutton') is None:
        problems.insert(0, "sphinx-copybutton is not installed (a dev requirement): pip install -e '.[dev]', or run tools/ci_docs.sh")
    _report(problems, 'code blocks or tables cut, or without copy buttons')

def test_maths_fits_the_window(views):
    "Every formula lies inside the window: it fits, wraps, or scrolls sideways in its own box"
    w = views['size'][0]
    problems = [f"{path} at {w} px: {kind} formula {t!r}: {why}" for path, v in views['pages'].items() for kind, t, why in v['maths']]
    _report(problems, 'formulas cut or past the window')

def _dash_headings(nb):
    "Headings a notebook marks with nbdev's ` -` (hide from the contents), without the marker"
    cells = json.loads((NBS/nb).read_text())['cells']
    return [m.group(1) for c in cells if c['cell_type'] == 'markdown'
            for m in re.finditer(r'^#+\s+(.*?\S)\s+-\s*$', ''.join(c['source']), re.M)]

def test_no_dash_headings(site, views):
    "nbdev's ` -` marker never shows: such a heading is shown without it, and kept out of the page's contents list"
    w, problems = views['size'][0], []
    for p in site['pages']:
        v = views['pages'][p['path']]
        problems += [f"{p['path']} at {w} px: heading {h!r}" for h in v['headings'] if re.search(r'\s-$', h)]
        problems += [f"{p['path']} at {w} px: contents entry {t!r}" for t in v['toc'] if re.search(r'\s-$', t)]
        hidden = _dash_headings(p['source']) if (NBS/p['source']).exists() else []
        problems += [f"{p['path']} at {w} px: {h!r} (marked ` -`) is in the contents list" for h in hidden if h in v['toc']]
    _report(problems, "' -' headings shown, or listed in the contents")

def test_dash_headings_processed():
    "The build turns a ` -` heading into an unlisted heading, and leaves code blocks alone"
    sys.path.insert(0, str(ROOT/'tools'))
    from build_docs import dash_headings
    md = dash_headings('## Parsing -\nProse.\n\n```sh\n## not a heading -\n```\n### Keep me')
    assert md.startswith('```{rubric} Parsing\n:heading-level: 2\n'), md
    assert '## not a heading -' in md and '### Keep me' in md

def test_tutorials_first_in_the_navigation(site, views):
    "The sidebar lists the tutorials before the API pages, and the index's Next leads to the first tutorial"
    w, base, problems = views['size'][0], site['base'], []
    tutorials = [p['path'] for p in site['pages'] if p['path'].startswith('tutorials/')]
    assert tutorials, 'no tutorials published'
    for path, v in views['pages'].items():
        order = [u[len(base):] for u in dict.fromkeys(urldefrag(u)[0] for u in v['nav']) if u.startswith(base)]
        order = [u for u in order if u not in ('', 'index.html')]
        if order[:len(tutorials)] != tutorials: problems.append(f"{path} at {w} px: the sidebar starts {order[:len(tutorials) + 1]}, not the tutorials")
    nxt = views['pages']['index.html']['next']
    if nxt != base + tutorials[0]: problems.append(f"index.html at {w} px: 'Next' leads to {nxt}, not {tutorials[0]}")
    _report(problems, 'navigation problems')

def test_no_console_errors(site, views):
    "No page writes an error or warning to the browser's console (a missing favicon, an invalid theme mode, a failed script)"
    w, problems = views['size'][0], []
    for path, v in views['pages'].items():
        problems += [f"{path} at {w} px: {m[:200]}" for m in v['console']]
        if not v['icon'] or _status(v['icon']) != 200: problems.append(f"{path} at {w} px: no favicon ({v['icon']})")
        if v['mode'] not in ('light', 'dark', 'auto'): problems.append(f"{path} at {w} px: theme mode {v['mode']!r}")
    _report(problems, 'console errors')

def test_prose_matches_what_the_user_has(site, infos):
    "The models page speaks of the user's own model, not a published one; tutorial 2 shows both corruptions and the default's"
    problems = []
    if re.search(r'published\s+Kerala\s+model', infos['models.html']['text']): problems.append("models.html: 'the published Kerala model'")
    grid = next(p['path'] for p in site['pages'] if 'noise' in p['path'])
    text = infos[grid]['text']
    if re.search(r"default noise|default,? .?noise_std=0\.1", text): problems.append(f"{grid}: calls Gaussian noise the default")
    for must in ('input dropout 0.3', 'Gaussian noise 0.1', 'recommended'):
        if must not in text: problems.append(f"{grid}: never shows {must!r}")
    if not [c for c in infos[grid]['cells'] if c['imgs'] and 'DROPOUT' in c['code']]: problems.append(f'{grid}: no figure of an input-dropout run')
    _report(problems, 'pages whose prose does not match what the user has')
