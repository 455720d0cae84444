"""Registered model parts: timm backbone wrapper, decode heads, losses, segmentor."""
from . import backbones, decode_heads, losses, segmentors  # noqa: F401
