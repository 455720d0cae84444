"""Class ids of a scan of any size, with memory bounded by the window batch.

Why it exists: mmseg's (and our segmentor's) sliding-window inference keeps
float logits for the whole image before the argmax: 8.5 GB for 16 classes on a
133-megapixel ARTeFACT scan, on top of a float copy of the image. Here the
image stays uint8 and is normalised one window batch at a time, window logits
are summed into a band of rows that only spans the windows still open, and
each row is reduced to class ids (uint8) as soon as no later window covers it.
The windows, their batches, the summation order and the averaging are those of
``ArtSegEncoderDecoder.slide_inference``, so the mask is the one it gives.
"""
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..models.segmentors.encoder_decoder import slide_windows


def _window_geometry(model: nn.Module, h_img: int, w_img: int):
    test_cfg = getattr(model, 'test_cfg', None) or {}
    if test_cfg.get('mode', 'whole') == 'slide':
        return tuple(test_cfg['crop_size']), tuple(test_cfg['stride'])
    return (h_img, w_img), (h_img, w_img)  # 'whole': one window


def _normaliser(model: nn.Module, device) -> Callable[[np.ndarray], torch.Tensor]:
    """uint8 HxWx3 window -> the (3, h, w) float tensor the data preprocessor
    would make of it (channel swap, then float, then mean/std: the same ops)."""
    pre = model.data_preprocessor
    if getattr(pre, 'test_cfg', None):
        raise ValueError('scan inference does not support a data_preprocessor.test_cfg '
                         '(padding of the whole image); remove it from the config')
    swap = getattr(pre, 'channel_conversion', False)
    normalise = getattr(pre, '_enable_normalize', False)

    def to_input(window: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1))).to(device)
        if swap:
            x = x[[2, 1, 0], ...]
        x = x.float()
        if normalise:
            x = (x - pre.mean) / pre.std
        return x
    return to_input


def _class_ids(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """(C, h, w) averaged logits -> (h, w) class ids, as mmseg's postprocess."""
    if logits.shape[0] == 1:
        return (logits[0].sigmoid() > threshold).to(torch.uint8)
    return logits.argmax(dim=0).to(torch.uint8)


@torch.no_grad()
def predict_class_ids(model: nn.Module, image: np.ndarray,
                      window_batch: Optional[int] = None,
                      progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """(H, W) uint8 class ids of ``image`` (H x W x 3 uint8, as the config's
    image loader returns it) by the model's sliding windows.

    ``window_batch`` overrides ``test_cfg.batch_size`` (windows per forward);
    ``progress(n)`` is called after each batch with the windows done in it.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'expected an H x W x 3 uint8 image, got {image.dtype} '
                         f'{image.shape}')
    h_img, w_img = image.shape[:2]
    crop, stride = _window_geometry(model, h_img, w_img)
    batch = int(window_batch or (model.test_cfg or {}).get('batch_size', 1))
    if batch < 1:
        raise ValueError(f'window batch must be >= 1, got {batch}')
    device = next(model.parameters()).device
    runner = model._inference_model() if hasattr(model, '_inference_model') else model
    autocast = model._autocast(device.type) if hasattr(model, '_autocast') \
        else torch.autocast(device.type, enabled=False)
    threshold = getattr(model.decode_head, 'threshold', None) or 0.3
    to_input = _normaliser(model, device)

    boxes = slide_windows(h_img, w_img, crop, stride)
    w_grids = len({(x1, x2) for _, _, x1, x2 in boxes})
    row_count = torch.zeros(h_img, dtype=torch.float32, device=device)
    col_count = torch.zeros(w_img, dtype=torch.float32, device=device)
    for y1, y2, _, _ in boxes[::w_grids]:
        row_count[y1:y2] += 1
    for _, _, x1, x2 in boxes[:w_grids]:
        col_count[x1:x2] += 1

    channels = model.out_channels
    out = np.empty((h_img, w_img), dtype=np.uint8)
    band = torch.zeros((channels, 0, w_img), dtype=torch.float32, device=device)
    top = 0  # image row of band[:, 0]
    meta = dict(ori_shape=(h_img, w_img))
    with autocast:
        for start in range(0, len(boxes), batch):
            chunk = boxes[start:start + batch]
            crops = torch.stack([to_input(image[y1:y2, x1:x2]) for y1, y2, x1, x2 in chunk])
            metas = [dict(meta, img_shape=crops.shape[2:])] * len(chunk)  # a Size, as mmseg's
            logits = runner.encode_decode(crops, metas)
            bottom = max(y2 for _, y2, _, _ in chunk)
            if bottom > top + band.shape[1]:
                grow = band.new_zeros((channels, bottom - top - band.shape[1], w_img))
                band = torch.cat([band, grow], dim=1)
            for j, (y1, y2, x1, x2) in enumerate(chunk):
                band[:, y1 - top:y2 - top, x1:x2] += logits[j]
            done = boxes[start + batch][0] if start + batch < len(boxes) else h_img
            if done > top:
                rows = done - top
                count = row_count[top:done, None] * col_count[None, :]
                out[top:done] = _class_ids(band[:, :rows] / count, threshold).cpu().numpy()
                band = band[:, rows:].clone()
                top = done
            if progress is not None:
                progress(len(chunk))
    return out


def count_windows(model: nn.Module, shape: Sequence[int]) -> int:
    """How many windows ``predict_class_ids`` runs on an image of ``shape``."""
    crop, stride = _window_geometry(model, shape[0], shape[1])
    return len(slide_windows(shape[0], shape[1], crop, stride))
