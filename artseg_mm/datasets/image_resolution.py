"""A scan's physical resolution (pixels per millimetre), read from its file header.

Why it exists: a damage report in pixels cannot be compared across scans or with
the object itself; in mm² and mm it can. The resolution is read from the header
only (scans are large and the pixels are not needed), from the tags each format
keeps it in, and is None wherever the file declares no physical unit: a scale is
never guessed, since a wrong one gives confidently wrong areas. The user can give
it instead (:func:`resolution_from_dpi`, :func:`resolution_from_px_per_mm`).
"""
import math
import numbers
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional

from PIL import Image

from .orientation import NoPillowPixelLimit

MM_PER_INCH = 25.4
MM_PER_CM = 10.0

# TIFF tags, also those of EXIF's first directory (the same numbers and meanings)
TAG_X_RESOLUTION, TAG_Y_RESOLUTION, TAG_RESOLUTION_UNIT = 282, 283, 296
# ResolutionUnit: 1 means "no absolute unit" (an aspect ratio), so it is absent here
RESOLUTION_UNIT_MM = {2: MM_PER_INCH, 3: MM_PER_CM}
# TIFF 6.0 and EXIF both define an absent ResolutionUnit as inch
DEFAULT_RESOLUTION_UNIT = 2
# JFIF density units; 0 means the density is a pixel aspect ratio only
JFIF_UNIT_MM = {1: MM_PER_INCH, 2: MM_PER_CM}

# What image software writes when it knows nothing of the scan (screen resolutions),
# so a file declaring them was most likely not tagged by the scanner.
SOFTWARE_DEFAULT_DPI = (72, 96)
# PNG keeps whole pixels per metre, so 72 dpi comes back as 2835 px/m = 72.009 dpi
SOFTWARE_DEFAULT_DPI_TOLERANCE = 0.05


class Resolution(NamedTuple):
    """Pixels per millimetre along x (columns) and y (rows), which differ for
    anisotropic scans; ``source``: where the values came from; ``note``: a warning
    for the report when the declared value is doubtful, else None."""
    px_per_mm_x: float
    px_per_mm_y: float
    source: str
    note: Optional[str] = None

    @property
    def dpi_x(self) -> float:
        return self.px_per_mm_x * MM_PER_INCH

    @property
    def dpi_y(self) -> float:
        return self.px_per_mm_y * MM_PER_INCH


def _positive_number(value) -> Optional[float]:
    """``value`` as a float when it is a single finite positive number, else None.
    Header tags can hold zero, a rational with a zero denominator (Pillow reads it
    as nan), a string or several values: none of them gives a scale."""
    if isinstance(value, tuple) and len(value) == 1:  # a one-element tag array
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _software_default_note(px_per_mm_x: float, px_per_mm_y: float) -> Optional[str]:
    """The warning for a declared 72 or 96 dpi, which is far more often a program's
    default than the resolution a scan was made at."""
    for dpi in (px_per_mm_x * MM_PER_INCH, px_per_mm_y * MM_PER_INCH):
        for default in SOFTWARE_DEFAULT_DPI:
            if abs(dpi - default) <= SOFTWARE_DEFAULT_DPI_TOLERANCE:
                return (f'the file declares {default} dpi, a common software default '
                        'rather than a scan resolution: areas and lengths may be wrong; '
                        "give the scan's resolution with --dpi")
    return None


def _declared(px_per_mm_x: float, px_per_mm_y: float, source: str,
              notes: List[str]) -> Resolution:
    """A file's :class:`Resolution`, with its notes and the software-default check."""
    default_note = _software_default_note(px_per_mm_x, px_per_mm_y)
    all_notes = notes + ([default_note] if default_note else [])
    return Resolution(px_per_mm_x, px_per_mm_y, source, '; '.join(all_notes) or None)


def _tagged_resolution(tags: Mapping, source: str) -> Optional[Resolution]:
    """XResolution/YResolution/ResolutionUnit of a TIFF or EXIF directory."""
    x_res = _positive_number(tags.get(TAG_X_RESOLUTION))
    y_res = _positive_number(tags.get(TAG_Y_RESOLUTION))
    if x_res is None or y_res is None:
        return None
    unit = tags.get(TAG_RESOLUTION_UNIT)
    if isinstance(unit, tuple) and len(unit) == 1:
        unit = unit[0]
    notes = []
    if unit is None:
        unit = DEFAULT_RESOLUTION_UNIT
        notes.append('ResolutionUnit absent: read as inch, the default of the format')
    if not isinstance(unit, numbers.Integral) or unit not in RESOLUTION_UNIT_MM:
        return None  # 1 (no absolute unit) or a value no reader knows
    mm_per_unit = RESOLUTION_UNIT_MM[unit]
    return _declared(x_res / mm_per_unit, y_res / mm_per_unit, source, notes)


def _tiff_resolution(image: Image.Image) -> Optional[Resolution]:
    return _tagged_resolution(image.tag_v2, 'TIFF XResolution/ResolutionUnit')


def _png_resolution(image: Image.Image) -> Optional[Resolution]:
    """From the pHYs chunk. Pillow gives it as ``info['dpi']`` only for unit 1
    (pixels per metre); unit 0 declares just the pixels' aspect ratio."""
    dpi = image.info.get('dpi')
    if not isinstance(dpi, tuple) or len(dpi) != 2:
        return None
    x_dpi, y_dpi = _positive_number(dpi[0]), _positive_number(dpi[1])
    if x_dpi is None or y_dpi is None:
        return None
    return _declared(x_dpi / MM_PER_INCH, y_dpi / MM_PER_INCH, 'PNG pHYs', [])


def _jpeg_resolution(image: Image.Image) -> Optional[Resolution]:
    """From the JFIF density, else from EXIF. Pillow's ``info['dpi']`` is not used:
    for a JPEG it falls back to 72 dpi when nothing is declared."""
    unit, density = image.info.get('jfif_unit'), image.info.get('jfif_density')
    if unit in JFIF_UNIT_MM and isinstance(density, tuple) and len(density) == 2:
        x_density, y_density = _positive_number(density[0]), _positive_number(density[1])
        if x_density is not None and y_density is not None:
            mm_per_unit = JFIF_UNIT_MM[unit]
            return _declared(x_density / mm_per_unit, y_density / mm_per_unit,
                             'JPEG JFIF', [])
    # no JFIF segment, unit 0 (an aspect ratio, libjpeg's default) or a zero
    # density: the JFIF says nothing of the size, the EXIF directory may
    return _tagged_resolution(image.getexif(), 'EXIF XResolution/ResolutionUnit')


# Pillow's format name -> reader; MPO is a JPEG holding several pictures
_READERS: Dict[str, Callable[[Image.Image], Optional[Resolution]]] = {
    'TIFF': _tiff_resolution,
    'PNG': _png_resolution,
    'JPEG': _jpeg_resolution,
    'MPO': _jpeg_resolution,
}


def read_resolution(path: str) -> Optional[Resolution]:
    """The physical resolution that the header of the image at ``path`` declares:
    TIFF XResolution/YResolution/ResolutionUnit, PNG pHYs, JPEG JFIF density or
    EXIF. None when it declares none, only an aspect ratio, zero or unreadable
    values, or for other formats. Only the header is read."""
    with NoPillowPixelLimit(), Image.open(path) as image:  # large scans are expected
        reader = _READERS.get(image.format)
        return reader(image) if reader is not None else None


def _given_positive(value, what: str) -> float:
    """``value`` as a float, or a ValueError naming ``what`` when it is not a finite
    positive number (a zero or negative scale has no meaning)."""
    message = f'{what} must be a positive number, got {value!r}'
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(message) from error
    if not math.isfinite(number) or number <= 0:
        raise ValueError(message)
    return number


def resolution_from_dpi(dpi: float) -> Resolution:
    """The user's resolution in dots (pixels) per inch, the same along x and y."""
    px_per_mm = _given_positive(dpi, 'dpi (pixels per inch)') / MM_PER_INCH
    return Resolution(px_per_mm, px_per_mm, 'given', None)


def resolution_from_px_per_mm(px_per_mm: float) -> Resolution:
    """The user's resolution in pixels per millimetre, the same along x and y."""
    value = _given_positive(px_per_mm, 'pixels per millimetre')
    return Resolution(value, value, 'given', None)


def swap_axes(resolution: Resolution) -> Resolution:
    """The resolution of the image turned by 90 degrees (EXIF orientations 5-8)."""
    return resolution._replace(px_per_mm_x=resolution.px_per_mm_y,
                               px_per_mm_y=resolution.px_per_mm_x)
