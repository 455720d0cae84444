"""Pictures: per-image overlays for ``tools/test.py --show-dir``; the
masks, overlays and page that ``tools/infer.py`` writes (``scan_report``)."""
from .overlay_hook import ArtSegVisualizationHook

__all__ = ['ArtSegVisualizationHook']
