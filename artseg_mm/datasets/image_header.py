"""What an image file's header says about its samples: bit depth, significant
bits and transparency.

Why it exists: OpenCV's colour decoding (what mmcv's loader uses) scales every
16-bit file as if all 16 bits held data and drops the alpha channel. A scanner
that writes 12-bit data into a 16-bit TIFF then gives a near-black image, and
the transparent surround of a cut-out becomes black pixels that get segmented.
The header, read without decoding the pixels, tells the loader when to scale
by the declared bits and where the transparency is.
"""
import math
import struct
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from .orientation import ExifOrientationWarning, NoPillowPixelLimit

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_ALPHA_COLOUR_TYPES = (4, 6)  # grey + alpha, RGB + alpha
TIFF_BITS_PER_SAMPLE, TIFF_MAX_SAMPLE_VALUE, TIFF_SMAX_SAMPLE_VALUE = 258, 281, 341
TIFF_SAMPLES_PER_PIXEL, TIFF_EXTRA_SAMPLES = 277, 338
# a 16-bit image whose 8-bit version peaks this low holds data in 12 bits or fewer
LOW_BITS_PEAK = 16


class LowBitDepthWarning(UserWarning):
    """A 16-bit image whose data fills only the low bits, with none declared."""


# what reading an image warns of about that image (a report keeps them with it)
IMAGE_WARNINGS = (ExifOrientationWarning, LowBitDepthWarning)


@dataclass(frozen=True)
class ImageHeader:
    """``bit_depth``: bits per sample as stored (8 or 16); ``significant_bits``:
    the bits that hold data, where the file declares them (PNG sBIT, TIFF
    MaxSampleValue/SMaxSampleValue), else None; ``has_alpha``: an alpha channel
    or PNG transparency chunk."""
    bit_depth: int = 8
    significant_bits: Optional[int] = None
    has_alpha: bool = False

    @property
    def scaled_by_declared_bits(self) -> bool:
        """16-bit samples that the file says hold fewer bits of data."""
        return (self.bit_depth == 16 and self.significant_bits is not None
                and 8 <= self.significant_bits < 16)


def _png_header(path: str) -> ImageHeader:
    """Walks the chunks before the pixel data (IHDR, sBIT, tRNS)."""
    depth, colour_type, significant, transparency = 8, 2, None, False
    with open(path, 'rb') as f:
        if f.read(8) != PNG_SIGNATURE:
            return ImageHeader()
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack('>I4s', head)
            if kind == b'IDAT' or kind == b'IEND':
                break
            data = f.read(length)
            f.seek(4, 1)  # CRC
            if kind == b'IHDR':
                depth, colour_type = data[8], data[9]
            elif kind == b'sBIT' and data:
                # colour channels only; alpha's significant bits do not scale colour
                colour = data[:1] if colour_type in (0, 4) else data[:3]
                significant = max(colour)
            elif kind == b'tRNS':
                transparency = True
    return ImageHeader(bit_depth=16 if depth == 16 else 8, significant_bits=significant,
                       has_alpha=colour_type in PNG_ALPHA_COLOUR_TYPES or transparency)


def _tiff_header(path: str) -> ImageHeader:
    with NoPillowPixelLimit(), Image.open(path) as image:  # reads the directory only
        tags = image.tag_v2
        bits = tags.get(TIFF_BITS_PER_SAMPLE, 8)
        bits = max(bits) if isinstance(bits, tuple) else int(bits)
        peak = tags.get(TIFF_SMAX_SAMPLE_VALUE, tags.get(TIFF_MAX_SAMPLE_VALUE))
        peak = max(peak) if isinstance(peak, tuple) else peak
        significant = (int(math.ceil(math.log2(int(peak) + 1)))
                       if peak is not None and 0 < int(peak) < 2 ** bits - 1 else None)
        samples = int(tags.get(TIFF_SAMPLES_PER_PIXEL, 1))
        # OpenCV reads a 2nd (grey) or 4th (RGB) sample as alpha, declared or not
        has_alpha = samples in (2, 4) or bool(tags.get(TIFF_EXTRA_SAMPLES))
    return ImageHeader(bit_depth=16 if bits == 16 else 8, significant_bits=significant,
                       has_alpha=has_alpha)


def read_image_header(path: str) -> ImageHeader:
    """The :class:`ImageHeader` of a PNG or TIFF file; other formats (JPEG:
    8-bit, no alpha) give the 8-bit default."""
    lower = str(path).lower()
    if lower.endswith('.png'):
        return _png_header(path)
    if lower.endswith(('.tif', '.tiff')):
        return _tiff_header(path)
    return ImageHeader()


def warn_if_low_bits(header: ImageHeader, peak: int, name: str) -> None:
    """Warn when 16-bit data, scaled as 16-bit because nothing declares fewer
    bits, peaks at ``peak`` <= 16 of 255: the data likely fills 12 bits or fewer."""
    if header.bit_depth == 16 and header.significant_bits is None and peak <= LOW_BITS_PEAK:
        warnings.warn(LowBitDepthWarning(
            f'{name}: 16-bit image whose values fill only the low bits (8-bit peak {peak} '
            'of 255), read as 16-bit data and so nearly black: if it holds e.g. 12-bit '
            'data, declare it (TIFF MaxSampleValue, PNG sBIT) or rescale the file'))
