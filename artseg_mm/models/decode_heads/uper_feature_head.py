"""UPerNet decoder (PPM + FPN) with per-level outputs and a norm-free global branch."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from .input_checks import check_num_inputs


class PoolingPyramid(nn.ModuleList):
    """PPM branches: adaptive average pool to each scale, 1x1 conv-norm-act.

    The scale-1 branch pools to a 1x1 map, whose batch statistics are
    undefined for one sample, so it is built as conv (with bias) + act and
    no norm layer, as in smp's UPerNet decoder; with
    ``global_norm=True`` it gets ``norm_cfg`` like the other branches
    (mmseg's ``PPM``).
    """

    def __init__(self, pool_scales: Sequence[int], in_channels: int,
                 channels: int, conv_cfg, norm_cfg, act_cfg,
                 global_norm: bool = False):
        super().__init__()
        self.pool_scales = tuple(pool_scales)
        for scale in self.pool_scales:
            plain = scale == 1 and not global_norm
            self.append(
                nn.Sequential(
                    nn.AdaptiveAvgPool2d(scale),
                    ConvModule(
                        in_channels,
                        channels,
                        1,
                        conv_cfg=conv_cfg,
                        norm_cfg=None if plain else norm_cfg,
                        act_cfg=act_cfg)))

    def forward(self, x: Tensor, align_corners: bool) -> List[Tensor]:
        size = x.shape[2:]
        return [
            F.interpolate(
                branch(x), size=size, mode='bilinear',
                align_corners=align_corners) for branch in self
        ]


@MODELS.register_module()
class UPerFeatureHead(BaseDecodeHead):
    """UPerNet head (PPM on the last stage + FPN), as in the study's seed.

    PPM at ``pool_scales`` on the last input; FPN with 1x1 lateral convs to
    ``channels``, a top-down path with bilinear upsampling, a 3x3 conv per
    level; all levels upsampled to the first input's resolution (1/4),
    concatenated, fused by a 3x3 conv and classified (logits at 1/4; mmseg's
    ``loss_by_feat`` / ``predict_by_feat`` upsample them once). The
    architecture and parameter count are those of mmseg's ``UPerHead`` and of
    smp's ``UPerNetDecoder`` (Xiao et al., 2018, `UPerNet
    <https://arxiv.org/abs/1807.10221>`_).

    What differs from mmseg's ``UPerHead`` and why:

    - ``forward_levels(inputs)`` returns the per-level FPN outputs
      (1/4 ... 1/32, PPM output last) so CAM and comparison tools can
      look at each level; ``_forward_feature`` is mmseg's hook, unchanged.
    - The pool-scale-1 PPM branch has no norm layer (conv with bias + act):
      with plain BN, mmseg's PPM fails to train at one sample per process
      (``Expected more than 1 value per channel when training``), which
      forces SyncBN even on CPU; this head trains with plain BN at batch 1.
      ``global_norm=True`` restores mmseg's behaviour. Parameters:
      ``channels`` fewer than mmseg's (bias instead of BN affine).
    - Levels already at the target size are not interpolated, and all ReLUs
      are in place (mmseg's lateral convs use ``inplace=False``).
      State-dict keys are mmseg's ``UPerHead`` keys, so its checkpoints load
      (with ``global_norm=True`` when they carry the scale-1 BN).

    Speed: with a ConvNeXt-T encoder the decoder is two thirds of the
    model's FLOPs, and the fusion conv (3x3 over 4 x
    ``channels`` at 1/4 resolution) alone is half; the head's ops are the
    same as smp's and mmseg's, so its speed is decided by how those 3x3
    convs run: ``artseg_mm.acceleration.optimize_for_inference`` makes them
    NNPACK Winograd convs on a CPU (the CPU demo configs build them so for
    training too). ``norm_cfg``, ``act_cfg`` and ``conv_cfg`` apply to every
    ``ConvModule`` as in mmseg.
    Parameters equal mmseg's ``UPerHead`` minus ``channels``, and smp's
    decoder minus its LayerNorms and ``channels``.

    Args:
        pool_scales (Sequence[int]): PPM pooling scales. Default (1, 2, 3, 6).
        global_norm (bool): Put ``norm_cfg`` in the scale-1 PPM branch too
            (mmseg's PPM). Default False.
        channels_last (bool): Run the head on channels-last maps: under CPU
            bfloat16 autocast oneDNN's convs and bilinear upsampling are faster
            on them (NNPACK's fp32 convs need NCHW). Default False;
            ``optimize_for_inference`` sets it for bf16.
        **kwargs: ``BaseDecodeHead`` arguments (``in_channels`` list,
            ``channels``, ``in_index``, ``norm_cfg`` ...).
            ``input_transform`` must be ``'multiple_select'`` (the default).
    """

    def __init__(self,
                 pool_scales: Sequence[int] = (1, 2, 3, 6),
                 global_norm: bool = False,
                 channels_last: bool = False,
                 **kwargs):
        transform = kwargs.setdefault('input_transform', 'multiple_select')
        if transform != 'multiple_select':
            raise ValueError(
                f'{type(self).__name__}: input_transform must be '
                f"'multiple_select' (one feature map per level), got "
                f'{transform!r}')
        super().__init__(**kwargs)
        self.channels_last = channels_last
        if len(self.in_channels) < 2:
            raise ValueError(
                f'{type(self).__name__}: needs at least 2 input levels, got '
                f'in_channels={self.in_channels}')
        if not pool_scales:
            raise ValueError(
                f'{type(self).__name__}: pool_scales must not be empty')
        conv = dict(
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        self.psp_modules = PoolingPyramid(
            pool_scales, self.in_channels[-1], self.channels,
            global_norm=global_norm, **conv)
        self.bottleneck = ConvModule(
            self.in_channels[-1] + len(pool_scales) * self.channels,
            self.channels, 3, padding=1, **conv)
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, self.channels, 1, **conv)
            for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(
            ConvModule(self.channels, self.channels, 3, padding=1, **conv)
            for _ in self.in_channels[:-1])
        self.fpn_bottleneck = ConvModule(
            len(self.in_channels) * self.channels,
            self.channels, 3, padding=1, **conv)

    def _upsample(self, x: Tensor, size) -> Tensor:
        if x.shape[2:] == size:
            return x
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def psp_forward(self, x: Tensor) -> Tensor:
        """PPM on the last level, concatenated with it and fused (3x3)."""
        outs = [x, *self.psp_modules(x, self.align_corners)]
        return self.bottleneck(torch.cat(outs, dim=1))

    def forward_levels(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Per-level FPN outputs, each ``channels`` wide at its level's size.

        Returns a list ordered like the inputs (finest first); the last entry
        is the PPM output on the coarsest level.
        """
        check_num_inputs(self, inputs)
        inputs = self._transform_inputs(inputs)
        if self.channels_last:
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        laterals.append(self.psp_forward(inputs[-1]))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + self._upsample(
                laterals[i], laterals[i - 1].shape[2:])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        outs.append(laterals[-1])
        return outs

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Fused 1/4 feature map (``channels`` wide) before ``cls_seg``."""
        levels = self.forward_levels(inputs)
        size = levels[0].shape[2:]
        fused = torch.cat([self._upsample(x, size) for x in levels], dim=1)
        return self.fpn_bottleneck(fused)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Logits at the first level's resolution."""
        return self.cls_seg(self._forward_feature(inputs))
