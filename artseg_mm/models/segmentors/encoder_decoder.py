"""ArtSegEncoderDecoder: mmseg's ``EncoderDecoder`` with build-time checks, a
non-finite-loss guard and batched bounded-memory sliding-window inference.

Why it exists (each a line where mmseg falls short):

- mmseg builds a head whose ``in_channels`` disagree with the backbone and fails
  later with a shape error deep in a conv; we fail at build time with both lists.
- mmseg trains on NaN/Inf losses silently; we stop with the iteration and the
  batch's file names.
- mmseg's ``slide_inference`` runs one window at a time, pads every window's
  logits to a full-image temporary and fails on images under the network's
  stride; ours is :func:`sliding_window_logits` (``batch_size`` windows per
  forward, logits summed in row bands, small images padded to the window).

The model holds no inference copies or caches: in eval mode the modules a user
holds are the modules that predict. Inference speed-ups (conv+BN folding, bf16
weight storage, NNPACK convs) are a separate step that returns a new module,
``artseg_mm.acceleration.optimize_for_inference``.
"""
import contextlib
import copy
import logging
from typing import Dict, List

import torch
import torch.nn as nn
from mmengine.logging import MessageHub, print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from .sliding_window import sliding_window_logits, window_blend

AUTOCAST_DTYPES = {'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16,
                    'float16': torch.float16, 'fp16': torch.float16}


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf; training on it would corrupt the weights."""


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@MODELS.register_module()
class ArtSegEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` with checks and batched, bounded inference.

    Args (beyond mmseg's ``EncoderDecoder``):
        channels_last (bool): keep the backbone's parameters and its input
            in channels-last memory format (faster convolutional encoders on
            CPU/oneDNN and tensor cores). The heads stay in the default
            layout: their 3x3 convs at 1/4 resolution are faster NCHW, on
            oneDNN and with NNPACK (``WinogradConv2d``), which needs NCHW.
            Defaults to False.

    A head config with ``in_channels=None`` takes the backbone's
    ``out_channels`` (at its ``in_index``); explicit ``in_channels`` are checked
    against them at build time (ValueError with both lists).

    ``train_cfg`` keys: ``check_finite_loss`` (default True).
    ``test_cfg`` keys: ``mode`` ('whole' | 'slide'), ``crop_size``, ``stride``,
    ``batch_size`` (windows per forward in slide mode, default 1),
    ``window_blend`` ('uniform' | 'gaussian': how overlapping windows' logits
    are averaged in slide mode, :mod:`.sliding_window`; default 'uniform'),
    ``autocast_dtype`` (None | 'bfloat16' | 'float16'; default None: the
    caller's precision), ``fuse_conv_bn`` (default False; read by
    ``optimize_for_inference``, not by the model).
    """

    def __init__(self, *args, channels_last: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        self._check_head_channels()
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ build
    def _with_backbone_channels(self, head_cfg):
        """A head config whose ``in_channels`` is None gets the backbone's
        ``out_channels`` at its ``in_index`` (one source of truth: timm's
        FeatureInfo via the backbone); an explicit value is left to be checked."""
        channels = getattr(self.backbone, 'out_channels', None)
        if (head_cfg is None or head_cfg.get('in_channels', 0) is not None
                or channels is None or self.with_neck):
            return head_cfg
        head_cfg = copy.deepcopy(head_cfg)
        in_index = head_cfg.get('in_index', -1)
        head_cfg['in_channels'] = ([list(channels)[i] for i in in_index]
                                   if isinstance(in_index, (list, tuple))
                                   else list(channels)[in_index])
        return head_cfg

    def _init_decode_head(self, decode_head) -> None:
        super()._init_decode_head(self._with_backbone_channels(decode_head))

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        if isinstance(auxiliary_head, list):
            auxiliary_head = [self._with_backbone_channels(h)
                              for h in auxiliary_head]
        else:
            auxiliary_head = self._with_backbone_channels(auxiliary_head)
        super()._init_auxiliary_head(auxiliary_head)

    def _check_head_channels(self) -> None:
        """Head ``in_channels`` (at their ``in_index``) must equal the
        backbone's ``out_channels``; checked only for backbones exposing them
        and without a neck (a neck remaps channels)."""
        backbone_channels = getattr(self.backbone, 'out_channels', None)
        if backbone_channels is None or self.with_neck:
            return
        backbone_channels = _as_list(backbone_channels)
        name = getattr(self.backbone, 'model_name', type(self.backbone).__name__)
        heads = [('decode_head', self.decode_head)]
        if self.with_auxiliary_head:
            if isinstance(self.auxiliary_head, nn.ModuleList):
                heads += [(f'auxiliary_head[{i}]', h)
                          for i, h in enumerate(self.auxiliary_head)]
            else:
                heads.append(('auxiliary_head', self.auxiliary_head))
        for head_name, head in heads:
            in_index = _as_list(head.in_index)
            bad = [i for i in in_index if not -len(backbone_channels) <= i
                   < len(backbone_channels)]
            if bad:
                raise ValueError(
                    f'{head_name}.in_index {in_index} out of range for backbone '
                    f"'{name}' with {len(backbone_channels)} outputs "
                    f'(out_channels {backbone_channels})')
            selected = [backbone_channels[i] for i in in_index]
            # mmseg stores sum(in_channels) for input_transform='resize_concat'.
            declared = _as_list(head.in_channels)
            if getattr(head, 'input_transform', None) == 'resize_concat':
                matches = declared == [sum(selected)]
            else:
                matches = declared == selected
            if not matches:
                at = ('' if in_index == list(range(len(backbone_channels)))
                      else f' (in_index {in_index}: {selected})')
                raise ValueError(
                    f'{head_name}.in_channels {declared} != backbone '
                    f"'{name}' out_channels {backbone_channels}{at}")

    # -------------------------------------------------------------- training
    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(inputs)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """mmseg's loss, then stop on a NaN/Inf loss term (see class doc)."""
        losses = super().loss(inputs, data_samples)
        if (self.train_cfg or {}).get('check_finite_loss', True):
            self._check_finite(losses, data_samples)
        return losses

    @staticmethod
    def _check_finite(losses: Dict[str, Tensor],
                      data_samples: SampleList) -> None:
        terms = [(k, t) for k, v in losses.items() if 'loss' in k
                 for t in _as_list(v) if isinstance(t, Tensor)]
        if not terms or bool(torch.stack(
                [t.detach().float().sum() for _, t in terms]).isfinite().all()):
            return
        bad = {k: t.detach().float().sum().item() for k, t in terms
               if not bool(torch.isfinite(t.detach()).all())}
        it = MessageHub.get_current_instance().get_info('iter')
        where = (f'iteration {it + 1}' if it is not None else
                 'an iteration outside a Runner (no iteration recorded)')
        paths = [s.metainfo.get('img_path', '<no img_path>')
                 for s in data_samples] if data_samples else []
        raise NonFiniteLossError(
            f'Non-finite loss at {where}: {bad}. Batch images: {paths}. '
            'Check these files and labels, lower the learning rate, or use '
            'fp32/bf16 instead of fp16.')

    # ------------------------------------------------------------- inference
    def _autocast(self, device_type: str):
        name = (self.test_cfg or {}).get('autocast_dtype', None)
        if name is None:  # leave the caller's precision (e.g. an outer autocast)
            return contextlib.nullcontext()
        if name not in AUTOCAST_DTYPES:
            raise ValueError(f"test_cfg.autocast_dtype must be one of "
                             f"{sorted(AUTOCAST_DTYPES)} or None, got {name!r}")
        return torch.autocast(device_type=device_type,
                              dtype=AUTOCAST_DTYPES[name])

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Whole or (batched) sliding-window inference, float32 logits."""
        mode = (self.test_cfg or {}).get('mode', 'whole')
        if mode not in ('slide', 'whole'):
            raise ValueError(f"test_cfg.mode must be 'slide' or 'whole', got {mode!r}")
        window_blend(self.test_cfg)  # a misspelt blend fails in 'whole' mode too
        ori_shape = batch_img_metas[0]['ori_shape']
        if not all(m['ori_shape'] == ori_shape for m in batch_img_metas):
            print_log('Image shapes are different in the batch.',
                      logger='current', level=logging.WARN)
        with self._autocast(inputs.device.type):
            if mode == 'slide':
                return self.slide_inference(inputs, batch_img_metas)
            return self.whole_inference(inputs, batch_img_metas).float()

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference, ``test_cfg.batch_size`` windows per forward
        (:func:`sliding_window_logits`): mmseg's windows, summation order and
        averaging, so under ``test_cfg.window_blend`` 'uniform' (the default) the
        result equals its ``slide_inference`` (exactly for batch_size 1) on images
        at least a window large; smaller ones are padded to the window.
        'gaussian' weights each window's logits by a Gaussian centred on it.
        Memory beyond the N x C x H x W float32 output is one window batch and
        a band of rows."""
        if 'crop_size' not in self.test_cfg or 'stride' not in self.test_cfg:
            raise KeyError("test_cfg with mode='slide' needs 'crop_size' and 'stride'")
        blend = window_blend(self.test_cfg)
        n_img, _, h_img, w_img = inputs.shape
        preds = inputs.new_zeros((n_img, self.out_channels, h_img, w_img),
                                 dtype=torch.float32)

        def crops_of(boxes):
            return torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])

        def forward(crops):
            metas = [dict(m, img_shape=crops.shape[2:])
                     for m in batch_img_metas] * (len(crops) // n_img)
            return self.encode_decode(crops, metas)
        for top, bottom, logits in sliding_window_logits(
                crops_of, forward, (h_img, w_img), self.test_cfg['crop_size'],
                self.test_cfg['stride'], int(self.test_cfg.get('batch_size', 1)),
                num_images=n_img, blend=blend):
            preds[:, :, top:bottom] = logits
        return preds
