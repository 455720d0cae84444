"""Compatibility with mmcv-lite and torch >= 2.6, installed on ``import artseg_mm``.

Must run before anything imports ``mmseg.models``.
"""
import warnings

from .checkpoint import (PlainHistoryBuffer, make_weights_only_safe,
                         register_safe_globals)
from .mmcv_ops import install_pure_pytorch_ops

__all__ = ['install_compat', 'install_pure_pytorch_ops', 'register_safe_globals',
           'make_weights_only_safe', 'PlainHistoryBuffer']


def install_compat() -> None:
    """Provide ``mmcv.ops`` where it is missing and allow-list our checkpoint classes."""
    install_pure_pytorch_ops()
    register_safe_globals()
    # mmcv-lite has no deformable attention op; mmcv warns about it on every
    # import although nothing here uses it (mmseg guards its users).
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``')
