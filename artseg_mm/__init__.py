"""artseg_mm: an MMSegmentation 1.x plugin for heritage-artwork damage segmentation.

Importing it (directly or through a config's ``custom_imports``) first installs
the compatibility layer (pure-PyTorch ``mmcv.ops`` on mmcv-lite, weights_only-safe
checkpoint classes), then registers the project's modules in mmseg's registries.
"""
from .compat import install_compat

install_compat()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__version__ = '0.1.0'
