"""Bringing huge rows to a size a data loader can read: shrink the long side, or cut tiles.

The image is shrunk with ``INTER_AREA``, the mask with nearest-neighbour only (no new label
values); tiles cover the image with the last row and column aligned to its border.
"""
from typing import Iterator, List, Tuple

import cv2
import numpy as np


def resize_long_side(image: np.ndarray, mask: np.ndarray,
                     long_side: int) -> Tuple[np.ndarray, np.ndarray, float]:
    """Shrink so the long side is ``long_side``: INTER_AREA for the image,
    nearest for the mask (INTER_NEAREST_EXACT: pixel-centre aligned like
    INTER_AREA and Pillow's NEAREST; never creates new label values)."""
    h, w = mask.shape
    if not long_side or max(h, w) <= long_side:
        return image, mask, 1.0
    scale = long_side / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST_EXACT)
    return image, mask, scale


def tile_starts(length: int, size: int, overlap: int) -> List[int]:
    """Start offsets covering ``length`` with windows of ``size``; the last
    window is aligned to the end (as mmseg's slide inference does)."""
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size, stride))
    return starts + [length - size]


def iter_tiles(image: np.ndarray, mask: np.ndarray, size: int,
               overlap: int) -> Iterator[Tuple[int, int, np.ndarray,
                                               np.ndarray]]:
    """``(x, y, image tile, mask tile)`` of every tile, row by row; views, not copies."""
    h, w = mask.shape
    for ty in tile_starts(h, size, overlap):
        for tx in tile_starts(w, size, overlap):
            yield (tx, ty, image[ty:ty + size, tx:tx + size],
                   mask[ty:ty + size, tx:tx + size])
