"""Class ids of a scan of any size, with memory bounded by the window batch.

Why it exists: mmseg's (and our segmentor's) sliding-window inference keeps
float logits for the whole image before the argmax: 8.5 GB for 16 classes on a
133-megapixel ARTeFACT scan, on top of a float copy of the image. Here the
image stays uint8 and is normalised one window batch at a time, and the row
bands of the accumulator the segmentor's slide inference uses
(:func:`sliding_window_logits`) are reduced to class ids (uint8) as they come,
so the mask is the one ``ArtSegEncoderDecoder.slide_inference`` gives.

:func:`predict_scan` also gives each pixel's confidence, the probability of its
top class from the same averaged logits, as uint8 (``CONFIDENCE_SCALE``),
computed band by band like the class ids.

The forward pass of a window batch is pluggable (:class:`WindowModel`): the
PyTorch segmentor (:func:`segmentor_window_model`) or an exported model run by
another runtime (``artseg_mm.deployment``) go through the same windows,
batches and averaging.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ..models.segmentors import slide_windows, sliding_window_logits
from ..models.segmentors.sliding_window import window_blend

# confidence is stored as uint8: value / CONFIDENCE_SCALE = the top class's probability
# (rounded to the nearest 1/255), a quarter of a float32 map's memory on a large scan
CONFIDENCE_SCALE = 255


class ScanPrediction(NamedTuple):
    """What :func:`predict_scan` gives for an image.

    Attributes:
        ids: (H, W) uint8 class ids.
        confidence: (H, W) uint8, value / ``CONFIDENCE_SCALE`` (255) = the
            probability of the most likely class (softmax of the averaged
            logits; one sigmoid channel: max(p, 1 - p)); None unless asked for.
    """
    ids: np.ndarray
    confidence: Optional[np.ndarray] = None


@dataclass
class WindowModel:
    """What sliding-window prediction needs of a model.

    Attributes:
        test_cfg: the segmentor's ``test_cfg`` (``mode``, ``crop_size``,
            ``stride``, ``batch_size``, ``window_blend``).
        out_channels: logit channels (1: sigmoid with ``threshold``).
        threshold: the decode head's sigmoid threshold for one channel.
        to_input: uint8 H x W x 3 window (the loader's channel order) ->
            (3, h, w) float tensor, as the data preprocessor makes it.
        forward: normalised (N, 3, h, w) windows -> (N, C, h, w) logits.
        device: where the inputs and the accumulated logits live.
    """
    test_cfg: dict
    out_channels: int
    threshold: float
    to_input: Callable[[np.ndarray], torch.Tensor]
    forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device


def _window_geometry(model: Union[nn.Module, WindowModel], h_img: int, w_img: int):
    test_cfg = getattr(model, 'test_cfg', None) or {}
    if test_cfg.get('mode', 'whole') == 'slide':
        return tuple(test_cfg['crop_size']), tuple(test_cfg['stride'])
    return (h_img, w_img), (h_img, w_img)  # 'whole': one window


def _window_blend(model: Union[nn.Module, WindowModel]) -> str:
    """``test_cfg.window_blend`` in slide mode (checked in either mode); 'uniform'
    in 'whole' mode, whose one window is the image, as the segmentor's
    ``whole_inference`` gives it, with no weights to divide out."""
    test_cfg = getattr(model, 'test_cfg', None) or {}
    blend = window_blend(test_cfg)
    return blend if test_cfg.get('mode', 'whole') == 'slide' else 'uniform'


def window_normaliser(pre: nn.Module, device) -> Callable[[np.ndarray], torch.Tensor]:
    """uint8 HxWx3 window -> the (3, h, w) float tensor the data preprocessor
    ``pre`` makes of it, by calling ``pre`` itself (channel swap, float, mean/std):
    what its options are called inside it differs between mmengine releases. A
    preprocessor that leaves the dtype (mmengine's ``BaseDataPreprocessor``) gets
    the float cast the segmentor's own path applies."""
    if getattr(pre, 'test_cfg', None):
        raise ValueError('scan inference does not support a data_preprocessor.test_cfg '
                         '(padding of the whole image); remove it from the config')

    def to_input(window: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1))).to(device)
        return pre(dict(inputs=[x]), training=False)['inputs'][0].float()
    return to_input


def class_ids(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """(C, h, w) averaged logits -> (h, w) class ids, as mmseg's postprocess."""
    if logits.shape[0] == 1:
        return (logits[0].sigmoid() > threshold).to(torch.uint8)
    return logits.argmax(dim=0).to(torch.uint8)


def confidence_of(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """(C, h, w) averaged logits -> (h, w) uint8 confidence: round(255 x the
    predicted class's probability), softmax over the classes; for one sigmoid
    channel p where p > ``threshold`` (predicted damage) else 1 - p, so damage
    predicted below p = 0.5 shows as unsure."""
    if logits.shape[0] == 1:
        p = logits[0].sigmoid()
        top = torch.where(p > threshold, p, 1 - p)
    else:
        top = logits.softmax(dim=0).amax(dim=0)
    return (top * CONFIDENCE_SCALE).round().to(torch.uint8)


def segmentor_window_model(model: nn.Module) -> WindowModel:
    """The :class:`WindowModel` of a built segmentor: its data preprocessor's
    normalisation and its ``encode_decode`` under its ``test_cfg.autocast_dtype``."""
    device = next(model.parameters()).device
    threshold = getattr(model.decode_head, 'threshold', None) or 0.3

    def forward(crops: torch.Tensor) -> torch.Tensor:
        autocast = model._autocast(device.type) if hasattr(model, '_autocast') \
            else torch.autocast(device.type, enabled=False)
        metas = [dict(img_shape=crops.shape[2:])] * len(crops)  # a Size, as mmseg's
        with autocast:
            return model.encode_decode(crops, metas)
    return WindowModel(test_cfg=dict(model.test_cfg or {}), out_channels=model.out_channels,
                       threshold=threshold, to_input=window_normaliser(
                           model.data_preprocessor, device),
                       forward=forward, device=device)


@torch.no_grad()
def predict_scan(model: Union[nn.Module, WindowModel], image: np.ndarray,
                 window_batch: Optional[int] = None,
                 progress: Optional[Callable[[int], None]] = None,
                 confidence: bool = False) -> ScanPrediction:
    """Class ids (and with ``confidence``, each pixel's confidence) of ``image``
    (H x W x 3 uint8, as the config's image loader returns it) by the model's
    sliding windows, blended per ``test_cfg.window_blend``.

    ``model`` is a built segmentor or a :class:`WindowModel`;
    ``window_batch`` overrides ``test_cfg.batch_size`` (windows per forward);
    ``progress(n)`` is called after each batch with the windows done in it.
    Both maps are made from each finished band of averaged logits, so memory
    stays one window batch and a band of rows, whatever the image size.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'expected an H x W x 3 uint8 image, got {image.dtype} '
                         f'{image.shape}')
    windows = model if isinstance(model, WindowModel) else segmentor_window_model(model)
    h_img, w_img = image.shape[:2]
    crop, stride = _window_geometry(windows, h_img, w_img)
    blend = _window_blend(windows)
    batch = int(window_batch or windows.test_cfg.get('batch_size', 1))

    def crops_of(boxes):
        return torch.stack([windows.to_input(image[y1:y2, x1:x2]) for y1, y2, x1, x2 in boxes])
    ids = np.empty((h_img, w_img), dtype=np.uint8)
    confidences = np.empty((h_img, w_img), dtype=np.uint8) if confidence else None
    for top, bottom, logits in sliding_window_logits(crops_of, windows.forward, (h_img, w_img),
                                                     crop, stride, batch, progress=progress,
                                                     blend=blend):
        ids[top:bottom] = class_ids(logits[0], windows.threshold).cpu().numpy()
        if confidence:
            confidences[top:bottom] = confidence_of(logits[0], windows.threshold).cpu().numpy()
    return ScanPrediction(ids, confidences)


def predict_class_ids(model: Union[nn.Module, WindowModel], image: np.ndarray,
                      window_batch: Optional[int] = None,
                      progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """(H, W) uint8 class ids of ``image``: :func:`predict_scan`'s ``ids``."""
    return predict_scan(model, image, window_batch, progress).ids


def count_windows(model: Union[nn.Module, WindowModel], shape: Sequence[int]) -> int:
    """How many windows ``predict_class_ids`` runs on an image of ``shape``."""
    crop, stride = _window_geometry(model, shape[0], shape[1])
    return len(slide_windows(shape[0], shape[1], crop, stride))
