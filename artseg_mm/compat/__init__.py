"""Compatibility with mmcv-lite and torch >= 2.6, installed on ``import artseg_mm``.

Must run before anything imports ``mmseg.models``.
"""
from ..checkpoints.safe_format import install_weights_only_loader, register_safe_globals
from .mmcv_ops import install_pure_pytorch_ops

__all__ = ['install_compat', 'install_pure_pytorch_ops']


def install_compat() -> None:
    """Provide ``mmcv.ops`` where missing; load checkpoints with ``weights_only=True``."""
    install_pure_pytorch_ops()
    register_safe_globals()
    install_weights_only_loader()
