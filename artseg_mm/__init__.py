"""artseg_mm: an MMSegmentation 1.x plugin for heritage-artwork damage segmentation.

Importing it (directly or through a config's ``custom_imports``) registers the
project's modules in mmseg's registries and makes checkpoints of local files and
http(s) URLs load through ``artseg_mm.checkpoints``' weights-only loader (registered
with mmengine's ``CheckpointLoader``: mmengine itself retries a file that
``weights_only=True`` refuses with ``weights_only=False``, and reads URLs with
``weights_only=False``, which runs the code a crafted file holds).
It replaces no function of mmseg, mmengine or mmcv.
"""
from .utils.known_warnings import ignore_known_warnings, without_optional_import_notices

ignore_known_warnings()  # first: mmcv warns while the imports below run

from .checkpoints.safe_format import (install_weights_only_loader,  # noqa: E402
                                      register_safe_globals)

register_safe_globals()
install_weights_only_loader()

with without_optional_import_notices():
    from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__version__ = '0.1.0'
