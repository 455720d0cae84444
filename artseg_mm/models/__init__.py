"""Registered model parts: timm backbone wrapper, decode heads, layers, losses, segmentor."""
from . import backbones, decode_heads, layers, losses, segmentors  # noqa: F401
