"""The damage regions of a class-id mask, their outlines, and the colours that name them.

Why it exists: every interchange format speaks of regions (a COCO annotation, a
GeoJSON feature, a IIIF annotation), not of pixels, so the exporters share one
definition of a region and one way of drawing its outline.

A region is an 8-connected set of pixels of one class, as in
:mod:`artseg_mm.apis.measurements`: a diagonal crack one pixel wide stays one
region instead of shattering into hundreds. Its outline is drawn by
``rasterio.features.shapes`` along pixel edges, 4-connected: GDAL's 8-connected
polygons join diagonal pixels by a ring that touches itself, which GEOS, QGIS
and QuPath call invalid. A region whose pixels meet only at corners therefore
becomes a MultiPolygon of valid parts. Pixel-edge polygons give the mask back
exactly when rasterised by pixel centres (a centre never lies on an edge).

Coordinates are in pixels: x to the right, y down, origin at the top-left corner
of the top-left pixel.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import rasterio.features
import shapely.geometry
from scipy import ndimage
from shapely.geometry.polygon import orient

from ..datasets.artefact_classes import CLEAN_ID, IGNORE_INDEX

BACKGROUND_ID = CLEAN_ID
# 255 marks pixels that were not segmented (outside the artwork): never exported
NOT_SEGMENTED = IGNORE_INDEX
# class ids share a uint8 with the not-segmented value, so at most 255 classes
MAX_CLASSES = NOT_SEGMENTED
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
OUTLINE_CONNECTIVITY = 4
BACKGROUND_COLOUR = (0, 0, 0)
# the Pascal VOC colour generator interleaves 8 bits of each channel: 2**24 colours
MAX_VOC_INDEX = 2 ** 24 - 1

RGB = Tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class Region:
    """One 8-connected region of one class.

    ``rows``/``cols``: its pixels (for run-length encodings, which need them and not
    the outline); ``bbox``: x, y, width, height in pixels; ``geometry``: a GeoJSON
    Polygon or MultiPolygon dict with integer pixel-edge coordinates, or None when
    the outline was not asked for."""
    index: int
    class_id: int
    area_px: int
    bbox: Tuple[int, int, int, int]
    rows: np.ndarray
    cols: np.ndarray
    geometry: Optional[dict] = None


def check_classes(classes: Sequence[str]) -> List[str]:
    """The class names as a list, refused early when they cannot name ids 0..n-1:
    every format looks classes up by name, so names must be unique strings."""
    names = list(classes)
    if not 2 <= len(names) <= MAX_CLASSES:
        raise ValueError(f'need between 2 and {MAX_CLASSES} classes (id 0 is the '
                         f'background, {NOT_SEGMENTED} is reserved), got {len(names)}')
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f'class names must be non-empty strings, got {name!r}')
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f'class names must be unique; repeated: {duplicates}')
    return names


def check_mask(mask, classes: Sequence[str]) -> np.ndarray:
    """``mask`` as a 2-D uint8 array, refused when it holds a value that is neither
    a class id nor the not-segmented value: exporting such a pixel would invent a
    class."""
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f'a mask is a non-empty H x W array of class ids, got shape '
                         f'{array.shape}')
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f'a mask holds integer class ids, got dtype {array.dtype}')
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > NOT_SEGMENTED:
        raise ValueError(f'mask values must lie in 0..{NOT_SEGMENTED}, found {low}..{high}')
    array = array.astype(np.uint8, copy=False)
    counts = np.bincount(array.ravel(), minlength=NOT_SEGMENTED + 1)
    unknown = [int(value) for value in np.flatnonzero(counts)
               if len(classes) <= value < NOT_SEGMENTED]
    if unknown:
        raise ValueError(f'mask holds values {unknown} that are neither a class id '
                         f'(0..{len(classes) - 1}) nor {NOT_SEGMENTED} (not segmented)')
    return array


def present_classes(mask: np.ndarray, n_classes: int) -> List[int]:
    """The exported class ids found in ``mask``, in id order (background and
    not-segmented pixels are never exported)."""
    counts = np.bincount(mask.ravel(), minlength=NOT_SEGMENTED + 1)
    return [class_id for class_id in range(n_classes)
            if class_id != BACKGROUND_ID and counts[class_id] > 0]


def label_regions(mask: np.ndarray, n_classes: int) -> Tuple[np.ndarray, List[int]]:
    """An int32 image numbering every region 1..N (0 where nothing is exported) and
    the class id of each region (index 0 unused). Regions are numbered by class id,
    then in raster order of their first pixel, so exports are reproducible."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    region_class = [BACKGROUND_ID]
    for class_id in present_classes(mask, n_classes):
        components, count = ndimage.label(mask == class_id, structure=EIGHT_CONNECTED)
        inside = components > 0
        labels[inside] = components[inside] + (len(region_class) - 1)
        region_class.extend([class_id] * count)
    return labels, region_class


def find_regions(mask: np.ndarray, classes: Sequence[str],
                 outlines: bool = True) -> List[Region]:
    """Every exported region of ``mask`` (checked against ``classes``), with its
    pixels, bounding box and, when ``outlines``, its pixel-edge outline."""
    names = check_classes(classes)
    mask = check_mask(mask, names)
    labels, region_class = label_regions(mask, len(names))
    geometries = region_outlines(labels) if outlines else {}
    regions = []
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = np.nonzero(labels[window] == index)
        rows = rows + window[0].start
        cols = cols + window[1].start
        bbox = (window[1].start, window[0].start, window[1].stop - window[1].start,
                window[0].stop - window[0].start)
        regions.append(Region(index=index, class_id=region_class[index],
                              area_px=int(rows.size), bbox=bbox, rows=rows, cols=cols,
                              geometry=geometries.get(index)))
    return regions


def region_outlines(labels: np.ndarray) -> Dict[int, dict]:
    """Region number -> GeoJSON geometry of its outline, from one pass of
    ``rasterio.features.shapes`` over the whole numbered image (one call instead of
    one per region, which would cost a full-image pass each)."""
    parts: Dict[int, list] = {}
    pieces = rasterio.features.shapes(labels, mask=labels > 0,
                                      connectivity=OUTLINE_CONNECTIVITY)
    for geometry, value in pieces:
        # GeoJSON's right-hand rule: exterior rings counter-clockwise in the
        # coordinates as written (GDAL writes them the other way round)
        polygon = orient(shapely.geometry.shape(geometry), sign=1.0)
        parts.setdefault(int(value), []).append(polygon)
    return {index: _as_geojson(polygons) for index, polygons in parts.items()}


def _as_geojson(polygons: list) -> dict:
    """A Polygon for a region of one 4-connected piece, else a MultiPolygon, with
    integer coordinates (pixel edges are whole numbers; floats would only bloat the
    files)."""
    rings = [[_int_ring(polygon.exterior.coords)]
             + [_int_ring(hole.coords) for hole in polygon.interiors]
             for polygon in polygons]
    if len(rings) == 1:
        return {'type': 'Polygon', 'coordinates': rings[0]}
    return {'type': 'MultiPolygon', 'coordinates': rings}


def _int_ring(coords) -> List[List[int]]:
    return [[int(round(x)), int(round(y))] for x, y in coords]


def geometry_polygons(geometry: dict) -> List[list]:
    """The polygons (each a list of rings) of a GeoJSON Polygon or MultiPolygon."""
    if geometry['type'] == 'Polygon':
        return [geometry['coordinates']]
    if geometry['type'] == 'MultiPolygon':
        return list(geometry['coordinates'])
    raise ValueError(f"expected a Polygon or MultiPolygon, got {geometry['type']!r}")


def svg_path(geometry: dict) -> str:
    """The SVG path data of a GeoJSON (Multi)Polygon: one closed subpath per ring.
    Drawn with ``fill-rule="evenodd"`` the holes stay empty whatever the rings'
    direction, and so does a hole holding another part of the same region."""
    subpaths = []
    for polygon in geometry_polygons(geometry):
        for ring in polygon:
            points = ring[:-1] if ring[0] == ring[-1] else ring
            head, *rest = points
            subpaths.append(f'M{head[0]},{head[1]} '
                            + ''.join(f'L{x},{y} ' for x, y in rest) + 'Z')
    return ' '.join(subpaths)


_SVG_TOKEN = re.compile(r'[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')


def parse_svg_path(path_data: str) -> List[List[Tuple[float, float]]]:
    """The rings of SVG path data made of absolute M, L and Z commands (what
    :func:`svg_path` writes and what polygon tools draw). Curves and relative
    commands are refused rather than approximated: a wrong outline would silently
    move damage."""
    rings: List[List[Tuple[float, float]]] = []
    tokens = _SVG_TOKEN.findall(path_data)
    command = None
    numbers: List[float] = []

    def flush_numbers():
        if len(numbers) % 2:
            raise ValueError(f'odd number of coordinates in SVG path {path_data!r}')
        if numbers and not rings:
            raise ValueError(f'SVG path must start with M: {path_data!r}')
        for i in range(0, len(numbers), 2):
            rings[-1].append((numbers[i], numbers[i + 1]))
        numbers.clear()

    for token in tokens:
        if token.isalpha():
            flush_numbers()
            command = token
            if command == 'M':
                rings.append([])
            elif command not in ('L', 'Z'):
                raise ValueError(f'unsupported SVG path command {command!r} (only '
                                 f'absolute M, L and Z are read): {path_data!r}')
        elif command in ('M', 'L'):
            numbers.append(float(token))
        else:
            raise ValueError(f'coordinate without a command in SVG path {path_data!r}')
    flush_numbers()
    return [ring for ring in rings if len(ring) >= 3]


def voc_colour(index: int) -> RGB:
    """Colour ``index`` of the Pascal VOC colour map (CVAT's and datumaro's default):
    the bits of ``index`` are spread over the channels from the most significant
    bit down, so nearby indices get very different colours."""
    if not 0 <= index <= MAX_VOC_INDEX:
        raise ValueError(f'VOC colour index must lie in 0..{MAX_VOC_INDEX}, got {index}')
    red = green = blue = 0
    for bit in range(7, -1, -1):
        red |= (index & 1) << bit
        green |= ((index >> 1) & 1) << bit
        blue |= ((index >> 2) & 1) << bit
        index >>= 3
    return red, green, blue


def voc_colour_table(count: int) -> np.ndarray:
    """The first ``count`` VOC colours as a (count, 3) uint8 table (vectorised
    :func:`voc_colour`, for colouring many regions at once)."""
    if count - 1 > MAX_VOC_INDEX:
        raise ValueError(f'at most {MAX_VOC_INDEX + 1} VOC colours exist, asked {count}')
    index = np.arange(count, dtype=np.int64)
    table = np.zeros((count, 3), dtype=np.int64)
    for bit in range(7, -1, -1):
        for channel in range(3):
            table[:, channel] |= ((index >> channel) & 1) << bit
        index >>= 3
    return table.astype(np.uint8)


def class_colours(classes: Sequence[str], palette=None) -> List[RGB]:
    """One colour per class, unique, with black kept for the background.

    Formats that identify a class by its colour (CVAT's masks) need this; the
    model's palette is used where it allows, and a class whose palette colour is
    missing, black or already taken gets the next free Pascal VOC colour."""
    names = check_classes(classes)
    given = _check_palette(palette) if palette is not None else []
    colours: List[RGB] = [BACKGROUND_COLOUR]
    used = {BACKGROUND_COLOUR}
    spare = 1
    for class_id in range(1, len(names)):
        colour = given[class_id] if class_id < len(given) else None
        if colour is None or colour in used:
            while voc_colour(spare) in used:
                spare += 1
            colour = voc_colour(spare)
        colours.append(colour)
        used.add(colour)
    return colours


def _check_palette(palette) -> List[RGB]:
    """The palette as RGB tuples, refused when an entry is not three 0..255 ints."""
    colours = []
    for entry in palette:
        values = [int(value) for value in entry]
        if len(values) != 3 or not all(0 <= value <= 255 for value in values):
            raise ValueError(f'palette entries are [r, g, b] in 0..255, got {entry!r}')
        colours.append(tuple(values))
    return colours
