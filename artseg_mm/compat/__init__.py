"""Compatibility with mmcv-lite and torch >= 2.6; imported before mmseg's models."""
from .mmcv_ops import install_pure_pytorch_ops


def install_compat() -> None:
    install_pure_pytorch_ops()
