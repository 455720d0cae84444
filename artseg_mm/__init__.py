"""artseg_mm: an MMSegmentation 1.x plugin for heritage-artwork damage segmentation.

Importing it (directly or through a config's ``custom_imports``) first installs
the compatibility layer (pure-PyTorch ``mmcv.ops`` on mmcv-lite, weights_only-safe
checkpoint classes), then registers the project's modules in mmseg's registries and lets mmseg's
inference APIs recognise the project's loading steps.
"""
from .compat import install_compat
from .utils.known_warnings import ignore_known_warnings

install_compat()
ignore_known_warnings()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401
from .compat.mmseg_inference import install_inference_compat  # noqa: E402

install_inference_compat()

__version__ = '0.1.0'
