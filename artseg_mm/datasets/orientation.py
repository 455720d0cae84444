"""One rule for EXIF orientation: pixels are used as stored, never rotated.

OpenCV's colour decoding (``cv2.IMREAD_COLOR``, mmcv's ``'color'``) turns an image by its
EXIF orientation tag, while its mask (a class-id PNG) has no such tag and stays as stored:
a square image would pass every size check and train misaligned. So the converter, the
dataset loader and ``tools/infer.py`` (which uses the config's loader) all decode with the
tag ignored, which keeps image and mask on one pixel grid, and warn when a tag would have
turned the image.
"""
import warnings

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112  # 1 = as stored; 2..8 = flipped and/or rotated
TURNED_ORIENTATIONS = (5, 6, 7, 8)  # those that swap width and height


class ExifOrientationWarning(UserWarning):
    """An image carries an EXIF orientation that is deliberately not applied."""


class NoPillowPixelLimit:
    """Disable Pillow's global decompression-bomb guard inside the block, for header
    reads of large scans (callers check sizes against their own explicit limits)."""

    def __enter__(self):
        self._old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None

    def __exit__(self, *exc):
        Image.MAX_IMAGE_PIXELS = self._old


# the formats OpenCV reads an orientation tag from
TAGGED_SUFFIXES = ('.jpg', '.jpeg', '.jpe', '.tif', '.tiff', '.png', '.webp')


def warn_if_file_oriented(path: str) -> None:
    """:func:`warn_if_oriented` for a local image file, reading its header only."""
    if not path.lower().endswith(TAGGED_SUFFIXES):
        return
    with NoPillowPixelLimit(), Image.open(path) as header:  # large scans are expected
        warn_if_oriented(header, f'image {path}')


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation of ``image`` (opened, not decoded); 1 without a tag. A
    PNG is checked for an eXIf chunk before its pixels only: one after them would
    need the whole image decoded."""
    if image.format == 'PNG':
        raw = image.info.get('exif')
        if raw is None:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = image.getexif()
    return int(exif.get(EXIF_ORIENTATION, 1))


def file_orientation(path: str) -> int:
    """:func:`orientation_of` a local image file, reading its header only."""
    if not path.lower().endswith(TAGGED_SUFFIXES):
        return 1
    with NoPillowPixelLimit(), Image.open(path) as header:
        return orientation_of(header)


def to_display_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H x W or H x W x C, as stored) turned as a viewer shows it for
    the EXIF ``orientation`` (1-8, the TIFF/EXIF definition, as Pillow's
    ``ImageOps.exif_transpose``); a view where numpy allows it."""
    turns = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
             4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
             6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
             8: lambda a: np.rot90(a, 1)}
    if orientation not in turns:
        raise ValueError(f'EXIF orientation must be 1-8, got {orientation}')
    return turns[orientation](array)


def warn_if_oriented(image: Image.Image, name: str) -> None:
    """Warn (once per image) when ``image`` (opened, not decoded) has an orientation
    tag other than 1 (the pixels are used as stored either way)."""
    orientation = orientation_of(image)
    if orientation != 1:
        warnings.warn(ExifOrientationWarning(
            f'{name} has EXIF orientation {orientation}: its pixels are used as stored, '
            'not rotated, so they stay aligned with its mask (and its predicted mask '
            'with the file). Viewers that apply the tag show it turned.'), stacklevel=3)
