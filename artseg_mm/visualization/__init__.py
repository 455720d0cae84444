"""Pictures: per-image overlays for ``tools/test.py --show-dir``."""
from .overlay_hook import ArtSegVisualizationHook

__all__ = ['ArtSegVisualizationHook']
