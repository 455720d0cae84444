"""Inference speed-ups as one explicit step: a new, faster module computing
the model's function, never a change to the model itself.

Why it exists: the levers that make CPU inference fast (conv+BN folding, bf16
weight storage under CPU bf16 autocast, NNPACK Winograd 3x3 convs and a
channels-last decoder) rewrite layers and weights. Kept inside the segmentor
they were hidden copies that ignored in-place weight edits and forward hooks;
here they are applied once, by the caller, to a copy it then holds (as mmseg
0.x folded conv+BN in ``tools/test.py --fuse-conv-bn``, not in the model).
``init_model``, ``tools/infer.py`` and ``tools/test.py`` call it unless told
not to (``optimize=False``, ``--plain-model``).
"""
import copy
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model.utils import _BatchNormXd
from timm.models._features import FeatureListNet

from .models.layers import WinogradConv2d, nnpack_usable
from .models.segmentors.encoder_decoder import AUTOCAST_DTYPES

# Batch-norm types whose eval forward is exactly the affine running-stat
# transform (subclasses such as timm's BatchNormAct2d add an activation);
# _BatchNormXd is what mmengine's revert_sync_batchnorm turns SyncBN into.
_FUSABLE_BN = (nn.BatchNorm2d, nn.SyncBatchNorm, _BatchNormXd)
# Convs that compute exactly nn.Conv2d's function from the same parameters
# (other subclasses, e.g. timm's Conv2dSame, pad differently).
_FUSABLE_CONV = (nn.Conv2d, WinogradConv2d)
# Containers whose forward runs their children in registration order, so a
# Conv2d directly followed by a BN child is a conv feeding that BN.
_SEQUENTIAL_CONTAINERS = (nn.Sequential, FeatureListNet)


def fuse_conv_bn_(module: nn.Module) -> int:
    """Fold eval-mode BN into the preceding conv, in place; returns the count.

    Only pairs whose forward order is certain are fused: mmcv ``ConvModule``
    with order ('conv', 'norm', ...), adjacent children of ``nn.Sequential`` /
    timm ``FeatureListNet``, and adjacent ``convN``/``bnN`` attribute pairs
    (timm ResNet blocks, where ``bnN`` always follows ``convN``). mmcv's own
    ``fuse_conv_bn`` pairs any BN with the last conv seen among siblings and
    also swallows BN subclasses that carry an activation, hence this version.
    """
    fused = 0
    children = list(module.named_children())
    for (prev_name, prev), (name, child) in zip(children, children[1:]):
        if type(child) not in _FUSABLE_BN or type(prev) not in _FUSABLE_CONV:
            continue
        if prev.out_channels != child.num_features or not child.track_running_stats:
            continue
        if isinstance(module, ConvModule):
            ok = tuple(module.order[:2]) == ('conv', 'norm')
        elif isinstance(module, _SEQUENTIAL_CONTAINERS):
            ok = True
        else:
            ok = (prev_name.startswith('conv') and name.startswith('bn')
                  and prev_name[4:] == name[2:])
        if not ok:
            continue
        module._modules[prev_name] = torch.nn.utils.fusion.fuse_conv_bn_eval(prev, child)
        module._modules[name] = nn.Identity()
        fused += 1
    for child in module.children():
        fused += fuse_conv_bn_(child)
    return fused


def conv_as(conv: nn.Conv2d, conv_type: type) -> nn.Conv2d:
    """A ``conv_type`` (``nn.Conv2d`` or a subclass computing its function) with
    ``conv``'s arguments, parameters, device and dtype."""
    new = conv_type(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                    conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
    new.load_state_dict(conv.state_dict())
    return new


def winograd_convs_(module: nn.Module) -> int:
    """Turn every plain ``nn.Conv2d`` under ``module`` into a
    :class:`WinogradConv2d` with the same parameters, in place; returns the
    count. The new layer takes NNPACK only for 3x3 stride-1 fp32 CPU maps of
    its ``min_pixels`` or more, and is ``nn.Conv2d.forward`` otherwise."""
    swapped = 0
    for name, child in module.named_children():
        if type(child) is nn.Conv2d:
            module._modules[name] = conv_as(child, WinogradConv2d)
            swapped += 1
        else:
            swapped += winograd_convs_(child)
    return swapped


def store_weights_in_bf16_(module: nn.Module) -> int:
    """Store conv and linear weights and biases in bfloat16, in place; returns
    the count of layers. For CPU bf16 autocast only: autocast otherwise casts
    every fp32 weight again on every forward; the cast is autocast's own
    rounding, so the logits are the same. Norm layers stay fp32, as autocast
    keeps them."""
    stored = 0
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            for name in ('weight', 'bias'):
                param = getattr(layer, name)
                if param is not None:
                    setattr(layer, name, nn.Parameter(param.detach().to(torch.bfloat16),
                                                      requires_grad=False))
            stored += 1
    return stored


def _decode_heads(model: nn.Module):
    heads = [getattr(model, 'decode_head', None)]
    aux = getattr(model, 'auxiliary_head', None)
    heads += list(aux) if isinstance(aux, nn.ModuleList) else [aux]
    return [head for head in heads if head is not None]


def optimize_for_inference(model: nn.Module, *, fuse_conv_bn: Optional[bool] = None,
                           bf16: Optional[bool] = None,
                           nnpack_convs: Optional[bool] = None) -> nn.Module:
    """A new eval-mode module with the model's function, faster for inference
    on the device its parameters are on; ``model`` itself is not changed.

    Args:
        model: a built segmentor (weights loaded).
        fuse_conv_bn: fold BN into the conv before it (masks equal the plain
            model's up to float rounding). Default: ``test_cfg.fuse_conv_bn``.
        bf16: the copy will run under CPU bfloat16 autocast: conv and linear
            weights stored in bf16 and the decode heads channels-last (oneDNN's
            bf16 kernels and upsampling are faster on NHWC maps), and
            ``test_cfg.autocast_dtype`` set to 'bfloat16'. Default: on a CPU,
            whether ``test_cfg.autocast_dtype`` is bfloat16.
        nnpack_convs: the decode heads' plain convs become
            :class:`WinogradConv2d` (NNPACK's Winograd kernels for 3x3 fp32 on
            CPU; they round differently, about 1e-5 relative). Default: on a CPU
            with NNPACK usable and not ``bf16`` (NNPACK is fp32 only).

    Returns:
        The optimised copy, in eval mode, with gradients off.
    """
    device_type = next(model.parameters()).device.type
    test_cfg = dict(getattr(model, 'test_cfg', None) or {})
    if fuse_conv_bn is None:
        fuse_conv_bn = bool(test_cfg.get('fuse_conv_bn', False))
    if bf16 is None:
        bf16 = (device_type == 'cpu'
                and AUTOCAST_DTYPES.get(test_cfg.get('autocast_dtype')) == torch.bfloat16)
    if nnpack_convs is None:
        nnpack_convs = device_type == 'cpu' and not bf16 and nnpack_usable()
    fast = copy.deepcopy(model).eval()
    if fuse_conv_bn:
        fuse_conv_bn_(fast)
    for head in _decode_heads(fast):
        if nnpack_convs:
            winograd_convs_(head)
        if bf16 and hasattr(head, 'channels_last'):
            head.channels_last = True
    if bf16:
        store_weights_in_bf16_(fast)
        fast.test_cfg = dict(test_cfg, autocast_dtype='bfloat16')
    return fast.requires_grad_(False)
