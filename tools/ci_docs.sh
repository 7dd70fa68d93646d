#!/usr/bin/env bash
# Prerequisites of the documentation-site browser test (tests/test_docs_site.py):
# Debian's Chromium and ChromeDriver (never a downloaded browser) and the selenium client.
# The site generator itself (Sphinx, MyST-NB, Book theme, MathJax, sphinx-copybutton) comes with the package's
# dev extras; an environment made before sphinx-copybutton joined them gets it here (the build warns without it).
set -euo pipefail
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
python -c 'import selenium' 2>/dev/null || pip install --quiet 'selenium>=4.10'   # normally already there: a dev requirement
python -c 'import sphinx_copybutton' 2>/dev/null || pip install --quiet 'sphinx-copybutton>=0.5.2'   # likewise
/usr/bin/chromium --version
/usr/bin/chromedriver --version
