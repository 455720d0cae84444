"""One source row's image and mask, decoded and checked before anything is written.

Pillow's decompression-bomb guard is replaced by an explicit check of the PNG header's size
against ``max_pixels`` before anything is decoded, so the largest published image (12288 x
10860, 133 Mpx) is converted knowingly and anything larger is a bad row, never dropped
silently. Every problem is a :class:`BadRowError` naming the row and its shard.
"""
import io
from typing import List, Tuple

import cv2
import numpy as np
from PIL import Image

from ..datasets.artefact_classes import FULL_CLASSES, IGNORE_INDEX
from ..datasets.orientation import NoPillowPixelLimit, warn_if_oriented
from .class_stats import histogram
from .errors import BadRowError
from .parquet_source import SourceRow

VALID_MASK_VALUES = frozenset(range(len(FULL_CLASSES))) | {IGNORE_INDEX}


def struct_bytes(value, column: str, row: SourceRow) -> bytes:
    """The file bytes of an ``{bytes, path}`` column; a struct without them is a bad row."""
    if not isinstance(value, dict) or value.get('bytes') is None:
        where = value.get('path') if isinstance(value, dict) else None
        raise BadRowError(
            row.source_id, row.shard,
            f'{column} holds no PNG bytes (path={where!r}); expected the '
            f'{{bytes, path}} struct with embedded bytes')
    return value['bytes']


def _header_size(data: bytes, column: str, row: SourceRow,
                 max_pixels: int) -> Tuple[Image.Image, int, int]:
    """Open the header only (no pixels decoded) and refuse a size above ``max_pixels``."""
    try:
        with NoPillowPixelLimit():
            img = Image.open(io.BytesIO(data))
    except OSError as err:  # includes PIL.UnidentifiedImageError
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable {column}: {err}') from err
    w, h = img.size
    if w * h > max_pixels:
        raise BadRowError(
            row.source_id, row.shard,
            f'{column} is {w}x{h} = {w * h} px, above max_pixels='
            f'{max_pixels} (raise --max-pixels knowingly, memory permitting)')
    return img, w, h


def decode_image(data: bytes, row: SourceRow,
                 max_pixels: int) -> np.ndarray:
    """PNG/JPEG bytes -> HxWx3 uint8 BGR (cv2 order, as mmseg loads)."""
    header, w, h = _header_size(data, 'image', row, max_pixels)
    try:  # orientation ignored: the mask is stored unrotated (see datasets.orientation)
        img = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as err:
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable image: {err}') from err
    if img is None:
        raise BadRowError(row.source_id, row.shard,
                          'undecodable image (truncated or corrupt file)')
    if img.shape[:2] != (h, w):
        raise BadRowError(
            row.source_id, row.shard,
            f'image decodes to {img.shape[1]}x{img.shape[0]} but its header '
            f'says {w}x{h}')
    warn_if_oriented(header, f'image of row {row.source_id!r} ({row.shard})')
    return img


def decode_mask(data: bytes, row: SourceRow, max_pixels: int) -> np.ndarray:
    """Class-index PNG -> HxW uint8 of class ids. Decoded with Pillow, which
    keeps palette ('P') indices (cv2 would expand them to colours)."""
    img, _, _ = _header_size(data, 'annotation', row, max_pixels)
    if img.mode not in ('L', 'P', '1', 'I', 'I;16', 'I;16B', 'I;16L'):
        raise BadRowError(
            row.source_id, row.shard,
            f'annotation has mode {img.mode!r}; expected a single-channel '
            f'class-index PNG (not the colour-coded annotation_rgb)')
    try:
        with NoPillowPixelLimit():
            mask = np.asarray(img)
    except OSError as err:
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable annotation: {err}') from err
    if mask.dtype != np.uint8:
        bad = sorted(int(v) for v in np.unique(mask)
                     if int(v) not in VALID_MASK_VALUES)
        if bad:
            raise BadRowError(row.source_id, row.shard,
                              _bad_values_message(bad))
        mask = mask.astype(np.uint8)
    return mask


def _bad_values_message(bad: List[int]) -> str:
    return (f'annotation values {bad[:20]} are outside the class ids '
            f'0..{len(FULL_CLASSES) - 1} and {IGNORE_INDEX} (background)')


def check_mask(mask: np.ndarray, image: np.ndarray,
               row: SourceRow) -> np.ndarray:
    """Size and value checks; returns the 256-bin pixel histogram."""
    if mask.shape[:2] != image.shape[:2]:
        raise BadRowError(
            row.source_id, row.shard,
            f'annotation is {mask.shape[1]}x{mask.shape[0]} but the image '
            f'is {image.shape[1]}x{image.shape[0]}')
    hist = histogram(mask)
    bad = [v for v in np.flatnonzero(hist).tolist()
           if v not in VALID_MASK_VALUES]
    if bad:
        raise BadRowError(row.source_id, row.shard, _bad_values_message(bad))
    return hist
