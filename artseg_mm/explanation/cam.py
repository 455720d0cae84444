"""Grad-CAM for mmseg segmentors with grad-cam 1.5, on CPU and CUDA.

Why it exists: mmseg's upstream
``tools/analysis_tools/visualization_cam.py`` passes ``use_cuda=`` to
``GradCAM`` (grad-cam 1.5 takes the device from the model's parameters and
rejects the argument), evaluates the layer name with ``eval``, and has no
reshape transform, so transformer features (timm Swin stages are NHWC, CoaT
blocks emit token sequences) break ``GradCAM``'s NCHW assumption.

What is computed: the segmentor is wrapped as ``image tensor -> class logits``
(:class:`SegLogitsWrapper`, through ``encode_decode``); the Grad-CAM target is
the chosen class's logit summed over the pixels predicted as that class
(grad-cam's ``SemanticSegmentationTarget``; for a one-channel sigmoid head the
negative class is -logit); the CAM is taken at one or more layers named by
their dotted path in the segmentor (``backbone.model.stages_3``), with
per-encoder defaults (:func:`default_target_layer_names`).
"""
import copy
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from artseg_mm.datasets.artefact_classes import (BINARY_CLASSES,
                                                 DAMAGE_CLASS_INDEX_BINARY)

# Strides tried when matching a feature map's spatial size to the input's.
_STRIDES = (1, 2, 4, 8, 16, 32, 64)
# Module families whose 4-D outputs are channels-last (timm Swin stages/blocks).
_NHWC_MODULE_PREFIXES = ('timm.models.swin_transformer', )
# ``--target-layers head``: the decode head's feature before the classifier (what
# ``_forward_feature`` returns): the first of these modules that exists (UPerHead
# and UPerFeatureHead: ``fpn_bottleneck``; UNetHead: the last decoder block).
_HEAD_FEATURE_MODULES = ('decode_head.fpn_bottleneck', 'decode_head.blocks',
                         'decode_head.bottleneck')


class AnalysisInputError(ValueError):
    """Bad user input to an analysis tool (class, layer, query, stage, config)."""


# --------------------------------------------------------------------------- #
# Loading a segmentor and an image as the config's test pipeline prepares it
# --------------------------------------------------------------------------- #
def load_segmentor(config: Union[str, Path, 'Config'],  # noqa: F821
                   checkpoint: Optional[str],
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """The trained segmentor, built by :func:`artseg_mm.apis.init_model`
    (strict, ``weights_only`` loading; no pretrained weights fetched).

    A CUDA ``device`` on a machine without CUDA is an ``AnalysisInputError``.
    """
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise AnalysisInputError(f'--device {device}: CUDA is not available on '
                                 'this machine; use --device cpu')
    from ..apis import init_model
    return init_model(config, checkpoint, device=device, cfg_options=cfg_options,
                      optimize=False)  # hooks need the model's own layers


def _test_pipeline(cfg) -> list:
    pipeline = cfg.get('test_pipeline', None)
    if pipeline is None:
        dataloader = cfg.get('test_dataloader', None) or cfg.get('val_dataloader', None)
        pipeline = None if dataloader is None else dataloader.dataset.get('pipeline')
    if pipeline is None:
        raise AnalysisInputError('the config has neither `test_pipeline` nor '
                       '`test_dataloader.dataset.pipeline`: cannot prepare the image '
                       'as the model is evaluated')
    return [t for t in copy.deepcopy(list(pipeline))
            if not str(t.get('type', '')).endswith('Annotations')]


@dataclass
class PreparedImage:
    """An image (or the window of it that is analysed) as the model sees it and
    as it is shown."""
    inputs: Tensor              # (1, 3, h, w) normalised, on the model's device
    img_shape: Tuple[int, int]  # (h, w) of the image inside ``inputs`` (no padding)
    rgb: np.ndarray             # (H, W, 3) uint8: the analysed region of the original
    region: Tuple[int, int, int, int]  # (x0, y0, x1, y1) of ``rgb`` in the original
    full_shape: Tuple[int, int]  # (H, W) of the original image
    path: str

    @property
    def cropped(self) -> bool:
        return tuple(self.rgb.shape[:2]) != tuple(self.full_shape)

    def to_input_xy(self, xy: Tuple[float, float]) -> Tuple[float, float]:
        """Original-image pixel (x, y) -> pixel of ``inputs``."""
        x0, y0, x1, y1 = self.region
        return ((xy[0] - x0) * self.img_shape[1] / (x1 - x0),
                (xy[1] - y0) * self.img_shape[0] / (y1 - y0))


def model_window(model: nn.Module) -> Optional[Tuple[int, int]]:
    """Largest (h, w) the model is run on in one piece, if it has a limit: the
    slide-inference ``crop_size`` and/or a fixed-size backbone's size (CoaT)."""
    sizes = []
    test_cfg = getattr(model, 'test_cfg', None) or {}
    if test_cfg.get('mode') == 'slide':
        sizes.append(tuple(test_cfg['crop_size']))
    fixed = getattr(getattr(model, 'backbone', None), 'fixed_size', None)
    if fixed is not None:
        sizes.append(tuple(fixed))
    if not sizes:
        return None
    return min(s[0] for s in sizes), min(s[1] for s in sizes)


def prepare_image(model: nn.Module, img_path: Union[str, Path],
                  center_xy: Optional[Tuple[float, float]] = None,
                  whole: bool = False) -> PreparedImage:
    """Run the config's test pipeline (minus annotations) and data preprocessor.

    As mmseg's ``inference_model`` does, so the CAM/attention are computed on
    the input the model is evaluated on. A model evaluated by sliding windows
    (``test_cfg.mode='slide'``) or with a fixed-size backbone never sees more
    than one window at a time: if the image is larger, the window (of that
    size) centred on ``center_xy`` (original-image pixels; default the centre)
    is analysed, as slide inference would feed it. ``whole=True`` analyses the
    whole image instead (refused for a fixed-size backbone it does not fit).
    """
    import mmcv
    from mmengine.dataset import Compose

    img_path = str(img_path)
    if not Path(img_path).is_file():
        raise FileNotFoundError(f'image file not found: {img_path}')
    rgb = mmcv.imread(img_path, channel_order='rgb')
    if rgb is None:
        raise AnalysisInputError(f'could not decode image: {img_path}')
    data = Compose(_test_pipeline(model.cfg))(dict(img_path=img_path))
    img = data['inputs']  # (3, H, W) as the pipeline leaves it (maybe resized)
    H, W = img.shape[1:]
    oh, ow = rgb.shape[:2]
    sy, sx = H / oh, W / ow
    fixed = getattr(getattr(model, 'backbone', None), 'fixed_size', None)
    if whole and fixed is not None and (H > fixed[0] or W > fixed[1]):
        raise AnalysisInputError(
            f'{img_path}: the whole image ({H}x{W} after the test pipeline) does not fit '
            f'the backbone, built for {fixed[0]}x{fixed[1]}: leave out --whole to analyse '
            f'one window of that size')
    window = None if whole else model_window(model)
    x0, y0, x1, y1 = 0, 0, W, H
    if window is not None and (H > window[0] or W > window[1]):
        ch, cw = min(window[0], H), min(window[1], W)
        cx, cy = center_xy if center_xy is not None else ((ow - 1) / 2, (oh - 1) / 2)
        x0 = int(np.clip(round(cx * sx - cw / 2), 0, W - cw))
        y0 = int(np.clip(round(cy * sy - ch / 2), 0, H - ch))
        x1, y1 = x0 + cw, y0 + ch
        img = img[:, y0:y1, x0:x1]
    batch = model.data_preprocessor(
        dict(inputs=[img], data_samples=[data['data_samples']]), False)
    region = (int(round(x0 / sx)), int(round(y0 / sy)),
              int(round(x1 / sx)), int(round(y1 / sy)))
    shown = rgb[region[1]:region[3], region[0]:region[2]]
    return PreparedImage(batch['inputs'], (y1 - y0, x1 - x0), shown, region, (oh, ow),
                         img_path)


# --------------------------------------------------------------------------- #
# The model as grad-cam sees it
# --------------------------------------------------------------------------- #
class SegLogitsWrapper(nn.Module):
    """``(B, 3, H, W)`` image tensor -> ``(B, C, H, W)`` logits of a segmentor.

    Calls ``encode_decode`` (backbone, neck, decode head, resize to the input
    size): grad-cam needs a plain ``nn.Module`` returning a tensor, while an
    mmseg segmentor's ``forward`` takes data samples and a mode.
    """

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape[2:])
        metas = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)
                 for _ in range(x.shape[0])]
        return self.segmentor.encode_decode(x, metas)


# --------------------------------------------------------------------------- #
# Layers by name
# --------------------------------------------------------------------------- #
class LayerNotFoundError(KeyError):
    """A dotted layer name that is not in the model (message lists close names)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ''


def get_module(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule at dotted path ``name`` (``a.b.0``, ``a.b[0]``).

    A name that does not exist raises :class:`LayerNotFoundError` listing the closest
    module names, so a typo is one look away from the right spelling.
    """
    name = resolve_layer_name(model, name)
    normalised = name.replace('[', '.').replace(']', '').strip('.')
    modules = dict(model.named_modules())
    if normalised in modules:
        return modules[normalised]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(normalised, names, n=8, cutoff=0.5)
    prefix = normalised.rsplit('.', 1)[0]
    siblings = [n for n in names if n.startswith(prefix + '.')
                and n.count('.') == normalised.count('.')][:8]
    hint = close or siblings
    raise LayerNotFoundError(
        f'no layer named {name!r} in {type(model).__name__}. '
        + (f'Closest names: {", ".join(hint)}' if hint else
           f'Top-level names: {", ".join(n for n, _ in model.named_children())}'))


def resolve_layer_name(model: nn.Module, name: str) -> str:
    """``head`` -> the decode head's fused-feature module; other names unchanged."""
    if name != 'head':
        return name
    modules = dict(model.named_modules())
    for cand in _HEAD_FEATURE_MODULES:
        if cand in modules:
            return _last_runnable(modules[cand], cand)[0]
    children = [n for n, _ in getattr(model, 'decode_head', nn.Module()).named_children()]
    raise LayerNotFoundError(
        f'`head` needs one of {", ".join(_HEAD_FEATURE_MODULES)}; the decode head has '
        f'{", ".join(children) or "no submodules"}: name a layer instead')


def _last_runnable(module: nn.Module, name: str) -> Tuple[str, nn.Module]:
    """A ``ModuleList`` has no forward (hooks never fire): use its last item."""
    while isinstance(module, nn.ModuleList):
        idx = len(module) - 1
        name, module = f'{name}.{idx}', module[idx]
    return name, module


def default_target_layer_names(model: nn.Module) -> List[str]:
    """The deepest backbone stage the segmentor uses, by its dotted name.

    For ``TimmFeatureBackbone`` (``backbone.model`` is a timm features_only
    model) the name comes from timm's ``FeatureInfo`` of the last output:
    ``backbone.model.stages_3`` (ConvNeXt), ``backbone.model.layers_3`` (Swin),
    ``backbone.model.model.serial_blocks4.2`` (CoaT-Lite: the last serial
    block), ``backbone.model.layer4`` (ResNet). Other backbones: ``layer4`` or
    the last of ``stages``/``layers``.
    """
    modules = dict(model.named_modules())
    timm_model = getattr(getattr(model, 'backbone', None), 'model', None)
    feature_info = getattr(timm_model, 'feature_info', None)
    if feature_info is not None and hasattr(feature_info, 'module_name'):
        last = feature_info.module_name()[-1]
        for cand in (last.replace('.', '_'), last, f'model.{last}'):
            full = f'backbone.model.{cand}'
            if full in modules:
                return [_last_runnable(modules[full], full)[0]]
    for cand in ('backbone.layer4', 'backbone.stages', 'backbone.layers'):
        if cand in modules:
            return [_last_runnable(modules[cand], cand)[0]]
    raise AnalysisInputError(
        f'no default Grad-CAM layer known for backbone '
        f'{type(getattr(model, "backbone", model)).__name__}: pass one with '
        f'--target-layers (e.g. `head` for the decode head\'s fused feature)')


# --------------------------------------------------------------------------- #
# Reshape transform
# --------------------------------------------------------------------------- #
def _grid_fits(h: int, w: int, input_hw: Tuple[int, int]) -> bool:
    H, W = input_hw
    for s in _STRIDES:
        if h in (H // s, math.ceil(H / s)) and w in (W // s, math.ceil(W / s)):
            return True
    return False


def _strided_token_grid(n: int, input_hw: Tuple[int, int]
                        ) -> Optional[Tuple[int, int, int]]:
    """(h, w, extra leading tokens) if ``n`` tokens tile the input at some stride."""
    H, W = input_hw
    for extra in (0, 1):
        for s in _STRIDES:
            for h, w in ((math.ceil(H / s), math.ceil(W / s)), (H // s, W // s)):
                if h * w == n - extra and h > 0:
                    return h, w, extra
    return None


def _token_grid(n: int, sizes: Sequence[Tuple[int, int]]) -> Tuple[int, int, int]:
    """(h, w, extra leading tokens) for ``n`` tokens over one of ``sizes``,
    else a square grid, else ValueError."""
    for size in sizes:
        grid = _strided_token_grid(n, size)
        if grid is not None:
            return grid
    for extra in (0, 1):
        side = math.isqrt(n - extra)
        if side * side == n - extra and side > 0:
            return side, side, extra
    raise AnalysisInputError(
        f'cannot arrange {n} tokens on a grid for a {sizes[0][0]}x{sizes[0][1]} input '
        f'(neither h*w nor 1+h*w for any stride, nor a square): choose another '
        f'--target-layers')


class FeatureReshape:
    """Grad-CAM ``reshape_transform``: any layer output -> ``(B, C, h, w)``.

    * NCHW maps pass through.
    * NHWC maps (timm Swin stages/blocks) are detected from the shape: the
      pair of dims that matches the input size at some stride is spatial. If
      both layouts fit (e.g. ``(B, 16, 16, 16)``), ``channels_last`` decides
      (set from the module's family by :func:`make_reshape_transform`).
    * Token sequences ``(B, N, C)`` are laid on the grid that matches the
      input size at some stride; with one extra token (a class token, as in
      CoaT) it is dropped first.
    * ``padded_hw``: the size a fixed-size backbone (CoaT) pads the input to.
      Maps on that padded grid are cropped to the cells covering the input,
      so the CAM lines up with the image.
    """

    def __init__(self, input_hw: Tuple[int, int], channels_last: Optional[bool] = None,
                 padded_hw: Optional[Tuple[int, int]] = None):
        self.input_hw = tuple(int(v) for v in input_hw)
        self.channels_last = channels_last
        self.padded_hw = None if padded_hw is None else tuple(int(v) for v in padded_hw)

    def _sizes(self) -> List[Tuple[int, int]]:
        sizes = [self.input_hw]
        if self.padded_hw is not None and self.padded_hw != self.input_hw:
            sizes.append(self.padded_hw)
        return sizes

    def __call__(self, t: Tensor) -> Tensor:
        if isinstance(t, (tuple, list)):
            t = t[0]
        if t.dim() == 4:
            t = t.permute(0, 3, 1, 2) if self.is_channels_last(t) else t
        elif t.dim() == 3:
            b, n, c = t.shape
            h, w, extra = _token_grid(n, self._sizes())
            t = t[:, extra:].reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            raise AnalysisInputError(
                f'cannot use a {t.dim()}-D layer output of shape {tuple(t.shape)} for '
                f'Grad-CAM: expected NCHW, NHWC or (B, N, C) tokens; choose another '
                f'--target-layers')
        return self._crop_padding(t)

    def _crop_padding(self, t: Tensor) -> Tensor:
        h, w = t.shape[2:]
        if len(self._sizes()) == 1 or _grid_fits(h, w, self.input_hw):
            return t
        ph, pw = self.padded_hw
        stride = ph / h
        return t[:, :, :math.ceil(self.input_hw[0] / stride),
                 :math.ceil(self.input_hw[1] / (pw / w))]

    def is_channels_last(self, t: Tensor) -> bool:
        nchw = any(_grid_fits(t.shape[2], t.shape[3], s) for s in self._sizes())
        nhwc = any(_grid_fits(t.shape[1], t.shape[2], s) for s in self._sizes())
        if nchw and nhwc:
            return bool(self.channels_last)
        if nhwc:
            return True
        if nchw:
            return False
        if self.channels_last is not None:
            return self.channels_last
        raise AnalysisInputError(
            f'layer output of shape {tuple(t.shape)} matches a {self.input_hw[0]}x'
            f'{self.input_hw[1]} input neither as NCHW nor as NHWC; choose another '
            f'--target-layers')


def make_reshape_transform(layers: Sequence[nn.Module], input_hw: Tuple[int, int],
                           padded_hw: Optional[Tuple[int, int]] = None) -> FeatureReshape:
    """A :class:`FeatureReshape` for ``layers`` (channels-last for timm Swin)."""
    channels_last = any(type(m).__module__.startswith(_NHWC_MODULE_PREFIXES)
                        for m in layers)
    return FeatureReshape(input_hw, channels_last, padded_hw)


# --------------------------------------------------------------------------- #
# Category
# --------------------------------------------------------------------------- #
def class_names(model: nn.Module, num_classes: int) -> List[str]:
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = list(meta.get('classes') or [])
    if len(classes) != num_classes:
        classes = [str(i) for i in range(num_classes)]
    return classes


def resolve_category(category: Union[None, int, str], classes: Sequence[str],
                     pred: np.ndarray) -> int:
    """Class index from a name or index; by default the damage class (binary)
    or the largest predicted non-Clean class (else the largest predicted one)."""
    if category is None:
        if tuple(classes) == BINARY_CLASSES or len(classes) == 2:
            return DAMAGE_CLASS_INDEX_BINARY
        ids, counts = np.unique(pred, return_counts=True)
        order = [int(i) for i in ids[np.argsort(-counts)]]
        non_clean = [i for i in order if i != 0]
        return non_clean[0] if non_clean else order[0]
    if isinstance(category, str) and category.strip().lstrip('-').isdigit():
        category = int(category)
    if isinstance(category, int):
        if not 0 <= category < len(classes):
            raise AnalysisInputError(
                f'--category {category} out of range: the model has {len(classes)} '
                f'classes ({", ".join(classes)})')
        return category
    lowered = [c.lower() for c in classes]
    if category.lower() in lowered:
        return lowered.index(category.lower())
    raise AnalysisInputError(f'--category {category!r} is not a class of this model; '
                             f'classes: {", ".join(classes)}')


# --------------------------------------------------------------------------- #
# Grad-CAM
# --------------------------------------------------------------------------- #
@dataclass
class CamResult:
    """Grad-CAM of one image, at the network input's resolution (unpadded)."""
    cam: np.ndarray          # (h, w) float32 in [0, 1]
    pred: np.ndarray         # (h, w) int64 predicted class ids
    category: int
    category_name: str
    target_layers: List[str]
    whole_image_target: bool  # the class was not predicted: target = whole image
    notes: List[str] = field(default_factory=list)


def predict_classes(logits: Tensor, threshold: float = 0.5) -> np.ndarray:
    """(C, h, w) logits -> (h, w) class ids (argmax, or sigmoid threshold for C=1)."""
    if logits.shape[0] == 1:
        return (logits[0].sigmoid() > threshold).long().cpu().numpy()
    return logits.argmax(0).cpu().numpy()


def compute_gradcam(model: nn.Module, inputs: Tensor,
                    target_layers: Optional[Sequence[str]] = None,
                    category: Union[None, int, str] = None,
                    img_shape: Optional[Tuple[int, int]] = None,
                    cam_class: Optional[Callable] = None) -> CamResult:
    """Grad-CAM of ``category`` for a segmentor on one preprocessed image.

    Args:
        model: an mmseg segmentor (has ``encode_decode``).
        inputs: ``(1, 3, H, W)`` normalised image tensor on the model's device.
        target_layers: dotted layer names; default
            :func:`default_target_layer_names`.
        category: class index or name; see :func:`resolve_category`.
        img_shape: the unpadded image size inside ``inputs`` (crop at the end).
        cam_class: a grad-cam CAM class (default ``GradCAM``).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    if inputs.dim() != 4 or inputs.shape[0] != 1:
        raise ValueError(f'expected one image as (1, 3, H, W), got {tuple(inputs.shape)}')
    names = list(target_layers) if target_layers else default_target_layer_names(model)
    layers = [get_module(model, n) for n in names]
    names = [resolve_layer_name(model, n) for n in names]
    wrapper = SegLogitsWrapper(model).eval()
    with torch.no_grad():
        logits = wrapper(inputs)[0]
    threshold = float(getattr(getattr(model, 'decode_head', None), 'threshold', None) or 0.5)
    pred = predict_classes(logits, threshold)
    h, w = img_shape if img_shape is not None else pred.shape
    num_classes = max(int(logits.shape[0]), 2)
    classes = class_names(model, num_classes)
    cat = resolve_category(category, classes, pred[:h, :w])
    mask = np.zeros(pred.shape, dtype=bool)  # the padding (outside img_shape) stays out
    mask[:h, :w] = pred[:h, :w] == cat
    whole = not mask.any()
    notes = []
    if whole:
        notes.append(f'class {classes[cat]!r} is predicted nowhere in this image: '
                     f'the target is its score summed over the whole image')
        mask[:h, :w] = True
    weights = mask.astype(np.float32)
    if logits.shape[0] == 1:  # sigmoid head: damage = +logit, clean = -logit (the weights)
        target = SemanticSegmentationTarget(0, weights if cat == 1 else -weights)
    else:
        target = SemanticSegmentationTarget(cat, weights)
    # A fixed-size backbone (TimmFeatureBackbone.fixed_size, e.g. CoaT) pads the
    # input bottom/right: its inner layers see the padded grid.
    padded = getattr(getattr(model, 'backbone', None), 'fixed_size', None)
    reshape = make_reshape_transform(layers, tuple(inputs.shape[2:]), padded)
    cam_class = cam_class or GradCAM
    cam_fn = cam_class(model=wrapper, target_layers=layers, reshape_transform=reshape)
    # Not grad-cam's context manager: its __exit__ swallows IndexError.
    try:
        with torch.enable_grad():
            cam = cam_fn(input_tensor=inputs, targets=[target])[0]
    finally:
        cam_fn.activations_and_grads.release()
    cam, pred = cam[:h, :w], pred[:h, :w]
    if (h, w) != tuple(inputs.shape[2:]) and cam.max() > cam.min():  # re-scale the crop
        cam = (cam - cam.min()) / (cam.max() - cam.min())
    if not np.isfinite(cam).all():
        raise FloatingPointError(f'Grad-CAM at {names} is not finite')
    if float(cam.max() - cam.min()) == 0.0:
        notes.append('the CAM is constant: at this layer the gradient-weighted '
                     'activations are <= 0 everywhere (Grad-CAM keeps only positive '
                     'evidence) or the gradients are zero; try another '
                     '--target-layers or --category')
    return CamResult(cam.astype(np.float32), pred.astype(np.int64), cat, classes[cat],
                     names, whole, notes)


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #
def resize_to(array: np.ndarray, hw: Tuple[int, int], nearest: bool = False) -> np.ndarray:
    import cv2
    if tuple(array.shape[:2]) == tuple(hw):
        return array
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    dtype = array.dtype
    src = array.astype(np.float32) if nearest else array
    out = cv2.resize(src, (int(hw[1]), int(hw[0])), interpolation=interp)
    return out.astype(dtype)


def cam_overlay(rgb: np.ndarray, cam: np.ndarray, mask: Optional[np.ndarray] = None,
                image_weight: float = 0.5) -> np.ndarray:
    """Image + jet heatmap (+ white contour of ``mask``), uint8 RGB at image size."""
    import cv2
    from pytorch_grad_cam.utils.image import show_cam_on_image

    cam = resize_to(cam.astype(np.float32), rgb.shape[:2])
    out = show_cam_on_image(rgb.astype(np.float32) / 255.0, np.clip(cam, 0, 1),
                            use_rgb=True, image_weight=image_weight)
    if mask is not None and mask.any():
        mask = resize_to(mask.astype(np.uint8), rgb.shape[:2], nearest=True)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        thickness = max(1, round(max(rgb.shape[:2]) / 300))
        out = np.ascontiguousarray(out)
        cv2.drawContours(out, contours, -1, (255, 255, 255), thickness)
    return out


def save_cam_figure(path: Union[str, Path], rgb: np.ndarray, cam: np.ndarray,
                    mask: Optional[np.ndarray], title: str) -> None:
    """Two panels: the image, and image + CAM + predicted-mask contour with a colorbar."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cam = resize_to(cam.astype(np.float32), rgb.shape[:2])
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), constrained_layout=True)
    axes[0].imshow(rgb)
    axes[0].set_title('image')
    axes[1].imshow(rgb)
    im = axes[1].imshow(cam, cmap='jet', alpha=0.5, vmin=0.0, vmax=1.0)
    if mask is not None and mask.any():
        mask = resize_to(mask.astype(np.uint8), rgb.shape[:2], nearest=True)
        axes[1].contour(mask, levels=[0.5], colors='white', linewidths=1.2)
    axes[1].set_title('Grad-CAM (white: predicted mask)')
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02, label='normalised CAM')
    fig.suptitle(title, fontsize=10)
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
