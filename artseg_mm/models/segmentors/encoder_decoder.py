"""ArtSegEncoderDecoder: mmseg's ``EncoderDecoder`` with build-time checks, a
non-finite-loss guard, batched bounded-memory sliding-window inference and
config-controlled inference speed levers.

Why it exists (each a line where mmseg falls short):

- mmseg builds a head whose ``in_channels`` disagree with the backbone and fails
  later with a shape error deep in a conv; we fail at build time with both lists.
- mmseg trains on NaN/Inf losses silently; we stop with the iteration and the
  batch's file names.
- mmseg's ``slide_inference`` runs one window at a time and pads every window's
  logits to a full-image temporary (``F.pad``) before adding it: memory and time
  grow with image area per window. Ours runs ``batch_size`` windows per forward
  and adds each window's logits into a preallocated output in place; the count
  map is never materialised at full size (the grid's count is the outer product
  of a per-row and a per-column count).
- Inference levers, set in ``test_cfg`` (``channels_last`` is a constructor
  argument because it changes the backbone's memory format for training too):
  ``fuse_conv_bn`` (conv+BN folded in an inference copy, so training weights are
  never touched) and ``autocast_dtype`` ('bfloat16' on CPUs with bf16 support,
  'float16'/'bfloat16' on CUDA); under CPU bf16 the inference copy holds its
  conv and linear weights in bf16, so they are not cast again every forward.
"""
import contextlib
import copy
import logging
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.logging import MessageHub, print_log
from mmengine.model.utils import _BatchNormXd
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from timm.models._features import FeatureListNet

from ..layers import WinogradConv2d, cpu_bf16_autocast_enabled

AUTOCAST_DTYPES = {'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16,
                    'float16': torch.float16, 'fp16': torch.float16}
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


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf; training on it would corrupt the weights."""


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


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
        module._modules[prev_name] = torch.nn.utils.fusion.fuse_conv_bn_eval(
            prev, child)
        module._modules[name] = nn.Identity()
        fused += 1
    for child in module.children():
        fused += fuse_conv_bn_(child)
    return fused


def conv_bn_fused_copy(model: nn.Module) -> nn.Module:
    """A copy of the segmentor ``model`` with every conv+BN pair folded
    (:func:`fuse_conv_bn_`), for inference; ``model`` is left as it is."""
    fused = copy.deepcopy(model)
    fused.test_cfg = copy.deepcopy(model.test_cfg)
    fused.test_cfg['fuse_conv_bn'] = False
    fuse_conv_bn_(fused)
    return fused.eval()


def bf16_weight_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose conv and linear weights and biases are stored in
    bfloat16, for inference under CPU bf16 autocast only.

    Why: autocast casts every fp32 weight to bf16 again on every forward (it
    caches casts only within one autocast region), a pass over all the weights
    per image or window batch; stored in bf16 they are used as they are. The
    cast is autocast's own rounding, so the logits are the same. Norm layers
    and other parameters stay fp32, as autocast keeps them.
    """
    low = copy.deepcopy(model)
    for module in low.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            for name in ('weight', 'bias'):
                param = getattr(module, name)
                if param is not None:
                    setattr(module, name, nn.Parameter(param.detach().to(torch.bfloat16),
                                                       requires_grad=False))
    return low.eval()


def slide_windows(h_img: int, w_img: int, crop_size: Sequence[int],
                  stride: Sequence[int]) -> List[Tuple[int, int, int, int]]:
    """Window boxes ``(y1, y2, x1, x2)`` in mmseg's ``slide_inference`` order.

    The last row/column of windows is shifted back to end at the border, so all
    windows have the same size, ``min(crop, image)`` along each axis.
    """
    h_stride, w_stride = stride
    h_crop, w_crop = crop_size
    if not (0 < h_stride <= h_crop and 0 < w_stride <= w_crop):
        raise ValueError(f'test_cfg.stride {tuple(stride)} must be at least 1 and at most the '
                         f'window test_cfg.crop_size {tuple(crop_size)}: a larger stride leaves '
                         'bands of the image unsegmented')
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, h_img)
            x2 = min(w_idx * w_stride + w_crop, w_img)
            boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return boxes


@MODELS.register_module()
class ArtSegEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` with checks and faster, bounded inference.

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
    ``fuse_conv_bn`` (default False), ``autocast_dtype`` (None | 'bfloat16' |
    'float16'; default None).
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
    def train(self, mode: bool = True):
        self._drop_fused()
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        self._drop_fused()
        return super()._apply(fn, recurse=recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self._drop_fused()
        return super()._load_from_state_dict(*args, **kwargs)

    def _drop_fused(self) -> None:
        """Forget the cached inference copies (the weights or device changed)."""
        self.__dict__.pop('_fused_copy', None)
        self.__dict__.pop('_bf16_copy', None)

    def _cached_copy(self, key: str, build) -> nn.Module:
        """``build()``'s model, kept in ``__dict__`` (outside the module tree)."""
        if key not in self.__dict__:
            self.__dict__[key] = build()
        return self.__dict__[key]

    def _runs_cpu_bf16(self, device_type: str) -> bool:
        """Whether inference on ``device_type`` runs under CPU bfloat16 autocast:
        ``test_cfg.autocast_dtype`` says so, or it is unset and the caller's
        autocast region is bf16."""
        if device_type != 'cpu':
            return False
        name = (self.test_cfg or {}).get('autocast_dtype', None)
        if name is not None:
            return AUTOCAST_DTYPES.get(name) == torch.bfloat16
        return cpu_bf16_autocast_enabled()

    def _inference_model(self, device_type: Optional[str] = None) -> 'ArtSegEncoderDecoder':
        """``self``, or in eval mode a cached copy: conv+BN folded with
        ``test_cfg.fuse_conv_bn``, and under CPU bf16 autocast with its conv and
        linear weights stored in bf16 (:func:`bf16_weight_copy`). Copies are
        kept outside the module tree (not in ``state_dict``) and dropped on
        ``train()``, ``to()``/``_apply`` and ``load_state_dict``."""
        if self.training:
            return self
        model = self
        if (self.test_cfg or {}).get('fuse_conv_bn', False):
            model = self._cached_copy('_fused_copy', lambda: conv_bn_fused_copy(self))
        if self._runs_cpu_bf16(device_type or next(self.parameters()).device.type):
            model = self._cached_copy('_bf16_copy', lambda: bf16_weight_copy(model))
        return model

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
        ori_shape = batch_img_metas[0]['ori_shape']
        if not all(m['ori_shape'] == ori_shape for m in batch_img_metas):
            print_log('Image shapes are different in the batch.',
                      logger='current', level=logging.WARN)
        with self._autocast(inputs.device.type):
            model = self._inference_model(inputs.device.type)
            if mode == 'slide':
                return model.slide_inference(inputs, batch_img_metas)
            return model.whole_inference(inputs, batch_img_metas).float()

    def _window_batches(self, boxes, size: int) -> Iterator[list]:
        for start in range(0, len(boxes), size):
            yield boxes[start:start + size]

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference, ``test_cfg.batch_size`` windows per forward.

        Same windows, same summation order and same averaging as mmseg's
        ``slide_inference``, so the result equals it (exactly for batch_size 1);
        memory beyond the N x C x H x W float32 output is one window batch.
        """
        if 'crop_size' not in self.test_cfg or 'stride' not in self.test_cfg:
            raise KeyError("test_cfg with mode='slide' needs 'crop_size' and 'stride'")
        window_batch = int(self.test_cfg.get('batch_size', 1))
        if window_batch < 1:
            raise ValueError(f'test_cfg.batch_size must be >= 1, got {window_batch}')
        n_img, _, h_img, w_img = inputs.shape
        boxes = slide_windows(h_img, w_img, self.test_cfg['crop_size'],
                              self.test_cfg['stride'])
        preds = inputs.new_zeros((n_img, self.out_channels, h_img, w_img),
                                 dtype=torch.float32)
        row_count = torch.zeros(h_img, dtype=torch.float32, device=inputs.device)
        col_count = torch.zeros(w_img, dtype=torch.float32, device=inputs.device)
        h_grids = len({(y1, y2) for y1, y2, _, _ in boxes})
        w_grids = len(boxes) // h_grids
        for y1, y2, x1, x2 in boxes[::w_grids]:
            row_count[y1:y2] += 1
        for y1, y2, x1, x2 in boxes[:w_grids]:
            col_count[x1:x2] += 1
        for chunk in self._window_batches(boxes, window_batch):
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2]
                               for y1, y2, x1, x2 in chunk])
            metas = [dict(m, img_shape=crops.shape[2:])
                     for m in batch_img_metas] * len(chunk)
            logits = self.encode_decode(crops, metas)
            for j, (y1, y2, x1, x2) in enumerate(chunk):
                preds[:, :, y1:y2, x1:x2] += logits[j * n_img:(j + 1) * n_img]
        # count[y, x] = row_count[y] * col_count[x] (the windows form a grid);
        # divided in row blocks so no full-size count map is allocated.
        block = max(1, (1 << 22) // max(w_img, 1))
        for r0 in range(0, h_img, block):
            count = row_count[r0:r0 + block, None] * col_count[None, :]
            preds[:, :, r0:r0 + block].div_(count)
        return preds
