"""Old import path of `ebird_vae.ebd.synthetic`, kept so that existing code works: this name is that very module."""
import sys
from .ebd import synthetic as _module

sys.modules[__name__] = _module
