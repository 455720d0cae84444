"""A pure-PyTorch stand-in for ``mmcv.ops`` when mmcv's compiled ops are absent.

Why it exists: mmcv-lite (the official OpenMMLab build without compiled ops) is the
only mmcv that installs against torch 2.14 (full mmcv 2.1 does not compile: torch's
headers demand C++20). mmseg 1.2.2 imports two ops unconditionally —
``point_sample`` and ``sigmoid_focal_loss`` — so ``import mmseg.models`` fails with
``No module named 'mmcv._ext'``. This module *is* the stand-in ``mmcv.ops``: it
provides those two in PyTorch and answers every other op with a
``ModuleNotFoundError`` (mmseg guards its optional ops with exactly that exception).
It imports nothing from artseg_mm, so the start-up hook can load it as ``mmcv.ops``
before anything else. When full mmcv (with ``mmcv._ext``) is installed it steps
aside and changes nothing.
"""
import importlib.util
import sys
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

PROVIDED_OPS = ('point_sample', 'sigmoid_focal_loss')

# mmcv warns on every import that mmcv-lite has no deformable attention op,
# although nothing here uses it (mmseg guards its users)
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')


def point_sample(input: Tensor,
                 points: Tensor,
                 align_corners: bool = False,
                 **kwargs) -> Tensor:
    """Sample ``input`` at ``points`` given in [0, 1] x [0, 1] coordinates.

    Same contract as ``mmcv.ops.point_sample``: ``points`` is (N, P, 2) or
    (N, Hg, Wg, 2); the result is (N, C, P) or (N, C, Hg, Wg).
    """
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(
        input, points * 2.0 - 1.0, align_corners=align_corners, **kwargs)
    return output.squeeze(3) if add_dim else output


def sigmoid_focal_loss(input: Tensor,
                       target: Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       weight: Optional[Tensor] = None,
                       reduction: str = 'mean') -> Tensor:
    """Sigmoid focal loss with the semantics of mmcv's CUDA kernel.

    ``input`` is (N, C) logits, ``target`` (N,) class indices; index ``C`` means
    "no positive class". Per element: ``-alpha (1-p)^gamma log p`` for the target
    class and ``-(1-alpha) p^gamma log(1-p)`` for the others; a per-class
    ``weight`` scales each row by ``weight[target]``; ``mean`` divides the sum by N.
    """
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f'reduction must be none, mean or sum, got {reduction!r}')
    num_classes = input.size(1)
    one_hot = F.one_hot(target.long(), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.to(input.dtype)
    prob = input.sigmoid()
    log_p = F.logsigmoid(input)
    log_not_p = F.logsigmoid(-input)
    loss = -(one_hot * alpha * (1 - prob).pow(gamma) * log_p +
             (1 - one_hot) * (1 - alpha) * prob.pow(gamma) * log_not_p)
    if weight is not None:
        valid = target < num_classes
        row_weight = torch.ones_like(target, dtype=input.dtype)
        row_weight[valid] = weight.to(input.dtype)[target[valid]]
        loss = loss * row_weight[:, None]
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


__all__ = list(PROVIDED_OPS)
STANDIN_MARKER = '__artseg_mm_pure_pytorch_ops__'
__artseg_mm_pure_pytorch_ops__ = True


def __getattr__(name: str):
    """Any op but the two above: the error mmseg's guarded imports expect."""
    if name.startswith('__'):
        raise AttributeError(name)
    raise ModuleNotFoundError(
        f'mmcv.ops.{name} needs mmcv compiled ops (mmcv._ext), which mmcv-lite '
        f'does not ship. artseg_mm provides only {", ".join(PROVIDED_OPS)}; '
        'install full mmcv built for your torch to use the others.',
        name=f'mmcv.ops.{name}')


def compiled_ops_available() -> bool:
    """True when full mmcv with its compiled extension is installed."""
    return importlib.util.find_spec('mmcv._ext') is not None


def is_standin(module) -> bool:
    """Whether ``module`` is this file, loaded as ``mmcv.ops`` here or by the
    interpreter start-up hook (which loads it under that name)."""
    return getattr(module, STANDIN_MARKER, False) is True


def install_pure_pytorch_ops() -> bool:
    """Register this module as ``mmcv.ops`` unless full mmcv is installed.

    Returns True when the stand-in is (now) in place. Must run before anything
    imports ``mmseg.models``; the start-up hook installed with the package
    (``mmcv_startup_hook``) does it before any import at all.
    """
    if is_standin(sys.modules.get('mmcv.ops')):
        return True
    if compiled_ops_available():
        return False
    import mmcv
    ops = sys.modules[__name__]
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops
    return True
