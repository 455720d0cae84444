"""Sliding-window logits in row bands: the one accumulator behind the
segmentor's slide inference and the scan path (``artseg_mm.apis.scan_inference``).

Why it exists: mmseg's ``slide_inference`` runs one window at a time and pads
every window's logits to a full-image temporary before adding it, and a window
smaller than the network's total stride (an image under 32 px) stops it with a
kernel-size error. Here ``batch_size`` windows run per forward, their logits are
summed into a band of rows that spans only the windows still open, and each row
is averaged and handed on as soon as no later window covers it, so callers can
reduce it (to class ids) at once. Windows, summation order and averaging are
mmseg's, so under the default 'uniform' blend the logits equal its
``slide_inference``. An image smaller than the window along a side is padded
there (bottom/right, zeros after normalisation, as the data preprocessor pads
training crops) to the window size for the forward pass, and the logits are cut
back to the image.

``blend`` (``test_cfg.window_blend``) weights the windows: ``'uniform'`` (the
default) averages them as mmseg does; ``'gaussian'`` weights each window's
logits by a separable Gaussian centred on it (nnU-Net's importance map), so a
pixel's value comes mostly from the windows it is central in and the seams at
window borders, where a network sees least context, fade. The windows form a
grid and the weights are a product of a row and a column weight, so a pixel's
total weight is (its row's sum) x (its column's sum): no full-size weight map.
"""
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Box = Tuple[int, int, int, int]  # y1, y2, x1, x2

WINDOW_BLENDS = ('uniform', 'gaussian')
# sigma of the Gaussian weights, a share of the window side (nnU-Net's importance map)
GAUSSIAN_SIGMA_SCALE = 1 / 8
# each axis's weights are at least this share of the peak: a pixel that one window
# covers (at the image border) gets a defined value, not 0/0 after an underflow,
# and a corner's weight (the product of two floors) stays a normal float32
GAUSSIAN_FLOOR = 1e-3


def check_window_blend(blend) -> str:
    """``blend`` if it is a known ``test_cfg.window_blend``, else a ValueError."""
    if blend not in WINDOW_BLENDS:
        raise ValueError(f'test_cfg.window_blend must be one of {WINDOW_BLENDS}, '
                         f'got {blend!r}')
    return blend


def window_blend(test_cfg) -> str:
    """The checked ``test_cfg.window_blend``; 'uniform' when the key is absent
    (mmseg's averaging, what configs without the key were evaluated with)."""
    return check_window_blend((test_cfg or {}).get('window_blend', 'uniform'))


def gaussian_weights(crop: int, size: int) -> Tensor:
    """The first ``size`` of a ``crop``-long window's Gaussian weights, peak 1.

    The Gaussian is centred on the whole (padded) window, so the part of a
    window larger than the image keeps the weights of its place in the window.
    Computed in float64 and rounded once, so every window gets the same float32
    weights.
    """
    position = torch.arange(crop, dtype=torch.float64)
    sigma = crop * GAUSSIAN_SIGMA_SCALE
    weights = torch.exp(-0.5 * ((position - (crop - 1) / 2) / sigma) ** 2)
    weights = (weights / weights.max()).clamp_min(GAUSSIAN_FLOOR)
    return weights[:size].float()


def window_weights(blend: str, crop_size: Sequence[int], window_size: Sequence[int]
                   ) -> Optional[Tuple[Tensor, Tensor]]:
    """(row weights, column weights) of a window of ``window_size`` (the crop
    cut to the image), or None for 'uniform' (each window counts once)."""
    if check_window_blend(blend) == 'uniform':
        return None
    return (gaussian_weights(int(crop_size[0]), int(window_size[0])),
            gaussian_weights(int(crop_size[1]), int(window_size[1])))


def slide_windows(h_img: int, w_img: int, crop_size: Sequence[int],
                  stride: Sequence[int]) -> List[Box]:
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


def sliding_window_logits(
        crops_of: Callable[[List[Box]], Tensor],
        forward: Callable[[Tensor], Tensor],
        image_size: Sequence[int],
        crop_size: Sequence[int],
        stride: Sequence[int],
        batch_size: int,
        num_images: int = 1,
        progress: Optional[Callable[[int], None]] = None,
        blend: str = 'uniform',
) -> Iterator[Tuple[int, int, Tensor]]:
    """Average window logits over an image, yielded in row bands.

    Args:
        crops_of: boxes -> their normalised crops, ``(len(boxes) * num_images,
            3, h, w)``, window-major (all images' crops of the first box first).
        forward: normalised crops -> float logits ``(N, C, h, w)``.
        image_size: ``(H, W)``.
        crop_size, stride: the window and its step (``test_cfg``).
        batch_size: windows per forward pass.
        num_images: images sharing the windows (a batch of equal-size images).
        progress: called with the number of windows after each forward pass.
        blend: ``test_cfg.window_blend``, 'uniform' or 'gaussian' (module doc).

    Yields:
        ``(top, bottom, logits)``: rows ``top:bottom`` of the (weighted)
        averaged float32 logits, ``(num_images, C, bottom - top, W)``; the bands cover every row
        once, in order.
    """
    if batch_size < 1:
        raise ValueError(f'window batch must be >= 1, got {batch_size}')
    h_img, w_img = image_size
    boxes = slide_windows(h_img, w_img, crop_size, stride)
    pad_h, pad_w = max(crop_size[0] - h_img, 0), max(crop_size[1] - w_img, 0)
    w_grids = len({(x1, x2) for _, _, x1, x2 in boxes})
    # all windows have one size (slide_windows), so they share one weight pair
    axis_weights = window_weights(blend, crop_size, (boxes[0][1] - boxes[0][0],
                                                     boxes[0][3] - boxes[0][2]))
    band: Optional[Tensor] = None  # rows top.. of the summed (weighted) logits
    row_count = col_count = weight = None
    top = 0
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start:start + batch_size]
        crops = crops_of(chunk)
        if pad_h or pad_w:  # a window larger than the image: pad it, as training crops are
            crops = F.pad(crops, (0, pad_w, 0, pad_h))
        logits = forward(crops).float()
        if pad_h or pad_w:
            logits = logits[:, :, :logits.shape[2] - pad_h, :logits.shape[3] - pad_w]
        if band is None:
            band = logits.new_zeros((num_images, logits.shape[1], 0, w_img))
            # the windows form a grid: a pixel's window count (total weight) is the
            # product of its row's and its column's, so no full-size map is needed
            row_count = logits.new_zeros(h_img)
            col_count = logits.new_zeros(w_img)
            if axis_weights is None:
                for y1, y2, _, _ in boxes[::w_grids]:
                    row_count[y1:y2] += 1
                for _, _, x1, x2 in boxes[:w_grids]:
                    col_count[x1:x2] += 1
            else:
                row_weight, col_weight = (w.to(logits.device) for w in axis_weights)
                for y1, y2, _, _ in boxes[::w_grids]:
                    row_count[y1:y2] += row_weight
                for _, _, x1, x2 in boxes[:w_grids]:
                    col_count[x1:x2] += col_weight
                weight = row_weight[:, None] * col_weight[None, :]
        if weight is not None:  # uniform adds the logits as they are (mmseg's sums)
            logits = logits * weight
        bottom = max(y2 for _, y2, _, _ in chunk)
        if bottom > top + band.shape[2]:
            grow = band.new_zeros((*band.shape[:2], bottom - top - band.shape[2], w_img))
            band = torch.cat([band, grow], dim=2)
        for j, (y1, y2, x1, x2) in enumerate(chunk):
            band[:, :, y1 - top:y2 - top, x1:x2] += logits[j * num_images:(j + 1) * num_images]
        done = boxes[start + batch_size][0] if start + batch_size < len(boxes) else h_img
        if done > top:
            rows = done - top
            count = row_count[top:done, None] * col_count[None, :]
            yield top, done, band[:, :, :rows] / count
            band = band[:, :, rows:].clone()
            top = done
        if progress is not None:
            progress(len(chunk))
