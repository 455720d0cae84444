"""artseg_mm: an MMSegmentation 1.x plugin for heritage-artwork damage segmentation."""
from .compat import install_compat

install_compat()
