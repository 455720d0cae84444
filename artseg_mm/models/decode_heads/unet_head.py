"""U-Net decoder head for multi-scale encoder features (the study's baseline)."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from .input_checks import check_num_inputs


class UNetDecoderBlock(nn.Module):
    """Upsample, concatenate the skip feature (if any), two 3x3 conv-norm-act.

    Args:
        in_channels (int): Channels of the incoming (coarser) feature.
        skip_channels (int): Channels of the skip feature, 0 for none.
        out_channels (int): Output channels.
        interpolation_mode (str): ``F.interpolate`` mode for upsampling.
        align_corners (bool): For the bilinear/bicubic modes.
        conv_cfg, norm_cfg, act_cfg: ``ConvModule`` configs.
    """

    def __init__(self, in_channels: int, skip_channels: int,
                 out_channels: int, interpolation_mode: str,
                 align_corners: bool, conv_cfg, norm_cfg, act_cfg):
        super().__init__()
        self.interpolation_mode = interpolation_mode
        self.align_corners = (
            align_corners if interpolation_mode in
            ('linear', 'bilinear', 'bicubic', 'trilinear') else None)
        conv = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(
            in_channels + skip_channels, out_channels, 3, padding=1, **conv)
        self.conv2 = ConvModule(
            out_channels, out_channels, 3, padding=1, **conv)

    def forward(self, x: Tensor, size, skip: Optional[Tensor] = None):
        x = F.interpolate(
            x, size=size, mode=self.interpolation_mode,
            align_corners=self.align_corners)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


@MODELS.register_module()
class UNetHead(BaseDecodeHead):
    """U-Net decoder over a multi-scale encoder's features.

    Follows the decoder of Ronneberger et al., 2015 (`U-Net
    <https://arxiv.org/abs/1505.04597>`_) in the form smp's ``Unet`` uses for
    pretrained (timm) encoders: starting from the coarsest feature, each
    stage upsamples to the next finer level (nearest by default, as smp),
    concatenates that level's feature (skip connection) and applies two 3x3
    conv-norm-act blocks (mmcv ``ConvModule``). No centre block, as smp's
    default. mmseg's own ``UNet`` is a whole encoder-decoder *backbone*, not
    a head for another encoder's features, hence this head.

    ``decoder_channels`` lists each stage's output channels, coarsest first.
    The first ``len(in_channels) - 1`` stages take skip connections; each
    further entry adds a x2 upsampling stage without a skip. With the usual
    strides 4..32, ``(256, 128, 64)`` gives logits at 1/4 of the input and
    ``(256, 128, 64, 32, 16)`` (smp's resnet50 Unet widths) at full
    resolution. ``channels`` (the classifier's input) defaults to, and must
    equal, ``decoder_channels[-1]``.

    Args:
        decoder_channels (Sequence[int]): Stage widths, coarsest first.
            Default (256, 128, 64).
        interpolation_mode (str): Upsampling mode. Default 'nearest'.
        **kwargs: ``BaseDecodeHead`` arguments (``in_channels`` list finest
            first, ``in_index``, ``norm_cfg`` ...). ``input_transform`` must
            be ``'multiple_select'`` (the default).
    """

    def __init__(self,
                 decoder_channels: Sequence[int] = (256, 128, 64),
                 interpolation_mode: str = 'nearest',
                 **kwargs):
        name = type(self).__name__
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if not decoder_channels:
            raise ValueError(f'{name}: decoder_channels must not be empty')
        channels = kwargs.setdefault('channels', decoder_channels[-1])
        if channels != decoder_channels[-1]:
            raise ValueError(
                f'{name}: channels ({channels}) must equal the last '
                f'decoder_channels entry ({decoder_channels[-1]}), the width '
                f'the classifier sees; decoder_channels={decoder_channels}')
        transform = kwargs.setdefault('input_transform', 'multiple_select')
        if transform != 'multiple_select':
            raise ValueError(
                f'{name}: input_transform must be \'multiple_select\' (one '
                f'feature map per level), got {transform!r}')
        super().__init__(**kwargs)
        num_skips = len(self.in_channels) - 1
        if num_skips < 1:
            raise ValueError(
                f'{name}: needs at least 2 input levels, got '
                f'in_channels={self.in_channels}')
        if len(decoder_channels) < num_skips:
            raise ValueError(
                f'{name}: decoder_channels needs at least one entry per skip '
                f'level ({num_skips} for in_channels={self.in_channels}), '
                f'got {decoder_channels}')
        self.decoder_channels = decoder_channels
        skip_channels = list(self.in_channels[-2::-1])
        skip_channels += [0] * (len(decoder_channels) - num_skips)
        in_channels = [self.in_channels[-1], *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            UNetDecoderBlock(
                c_in, c_skip, c_out,
                interpolation_mode=interpolation_mode,
                align_corners=self.align_corners,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg)
            for c_in, c_skip, c_out in zip(in_channels, skip_channels,
                                           decoder_channels))

    def forward_levels(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Output of every decoder stage, coarsest first."""
        check_num_inputs(self, inputs)
        inputs = self._transform_inputs(inputs)
        skips = list(inputs[-2::-1])
        x = inputs[-1]
        outs = []
        for i, block in enumerate(self.blocks):
            if i < len(skips):
                skip = skips[i]
                size = skip.shape[2:]
            else:
                skip = None
                size = (x.shape[2] * 2, x.shape[3] * 2)
            x = block(x, size, skip)
            outs.append(x)
        return outs

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Last decoder stage's feature map, before ``cls_seg``."""
        return self.forward_levels(inputs)[-1]

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Logits at the last stage's resolution."""
        return self.cls_seg(self._forward_feature(inputs))
