"""Layers the model configs select by type (``conv_cfg``)."""
from .winograd_conv import WinogradConv2d, cpu_bf16_autocast_enabled, nnpack_usable

__all__ = ['WinogradConv2d', 'cpu_bf16_autocast_enabled', 'nnpack_usable']
