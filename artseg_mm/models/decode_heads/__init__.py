"""Decode heads: the study's UPerNet decoder and the U-Net baseline decoder."""
from .unet_head import UNetHead
from .uper_feature_head import UPerFeatureHead

__all__ = ['UPerFeatureHead', 'UNetHead']
