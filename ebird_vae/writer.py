"""Old import path of `ebird_vae.ebd.writer`, kept so that existing code works: this name is that very module."""
import sys
from .ebd import writer as _module

sys.modules[__name__] = _module
