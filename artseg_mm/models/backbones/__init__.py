"""Backbones: any timm model as an mmseg backbone (NCHW feature maps)."""
from .timm_features import TimmFeatureBackbone

__all__ = ['TimmFeatureBackbone']
