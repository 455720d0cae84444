"""Draw the polygons of a GeoJSON export over its image, to check the export by eye.

    python tools/misc/draw_geojson.py IMAGE GEOJSON --out PNG
        [--classes-from MODEL_OR_JSON] [--scale S] [--apply-exif]

GEOJSON is what ``tools/infer.py --export geojson`` (``to_geojson``) writes, or a
QuPath export: Polygon and MultiPolygon features in image pixels (x right, y down,
origin at the top-left corner of the image), each naming its class in
``properties.class`` or QuPath's ``properties.classification.name``. Each region is
outlined and filled translucent in its class colour, holes left open; a legend
names the classes and counts their regions.

Colours: the file's own (QuPath's ``classification.color``, which the export
takes from the model's palette), else one of matplotlib's tab10 colours by class.
``--classes-from`` names the model's classes (a work dir, model folder, config or a
JSON list, as ``from_annotations.py --classes``): the legend then follows the
model's class order, a colour the file lacks comes from the class id, and a class
the model does not have is an error.

The image is drawn as its pixels are stored, as ``tools/infer.py`` reads it;
``--apply-exif`` turns it by its EXIF orientation first, for an export made with
``infer --apply-exif``. Exit status: 0 drawn, 1 the file cannot be drawn on this
image (the message says why), 2 a usage mistake.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np
import shapely.geometry
from matplotlib.figure import Figure  # no pyplot: no backend or window to choose
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from PIL import Image
from shapely.geometry.polygon import orient

from artseg_mm.datasets.orientation import (NoPillowPixelLimit, file_orientation,
                                            to_display_orientation)

PROG = 'draw_geojson'
POLYGONAL = ('Polygon', 'MultiPolygon')
FILL_ALPHA = 0.35
LINE_WIDTH = 1.5  # points; at DPI 100, 2 px
DPI = 100
# the drawing's long side, when --scale is not given: small crops are enlarged
# (by a whole factor, so pixels stay square blocks) and large scans reduced
MIN_LONG_SIDE = 800
MAX_LONG_SIDE = 4000
TAB10 = matplotlib.colormaps['tab10']
RGB = Tuple[int, int, int]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f'{PROG}: {message}\n')


class UsageError(Exception):
    """A usage mistake found after parsing (a missing file, bad classes): exit 2."""


class DrawingError(Exception):
    """The GeoJSON cannot be drawn on this image: exit 1."""


class Feature:
    """One region to draw: its class name, the class id the file gives (or None),
    the colour the file gives (or None) and its shapely geometry."""

    def __init__(self, name: str, class_id: Optional[int], colour: Optional[RGB], geometry):
        self.name, self.class_id, self.colour, self.geometry = name, class_id, colour, geometry


def parse_args(argv=None):
    """The arguments, with the mistakes argparse cannot see (a missing file, a
    bad scale) reported the same way: one line, exit status 2."""
    parser = OneLineParser(prog=PROG, description='Draw the polygons of a GeoJSON export '
                           'over its image (outline, translucent fill, legend)')
    parser.add_argument('image', help='the image the GeoJSON was made on')
    parser.add_argument('geojson', help='the GeoJSON FeatureCollection (pixel coordinates)')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument('--classes-from', default=None, metavar='MODEL_OR_JSON',
                        help="the model's classes: a work dir, model folder, config or JSON "
                        'list of names; orders the legend and checks the class names')
    parser.add_argument('--scale', type=float, default=None,
                        help='output pixels per image pixel (default: a whole factor that '
                        f'makes the long side at least {MIN_LONG_SIDE} px, or a reduction '
                        f'to {MAX_LONG_SIDE} px for larger images)')
    parser.add_argument('--apply-exif', action='store_true',
                        help='turn the image by its EXIF orientation first (for an export '
                        'made with infer --apply-exif)')
    args = parser.parse_args(argv)
    if not args.out.lower().endswith('.png'):
        parser.error(f'--out must name a .png file, got {args.out!r}')
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        parser.error(f'--scale must be a positive number, got {args.scale}')
    for path in (args.image, args.geojson):
        if not osp.isfile(path):
            parser.error(f'no such file: {path}')
    return args


# ---------------------------------------------------------------- reading

def read_image(path: str, apply_exif: bool) -> np.ndarray:
    """The image as H x W x 3 uint8 RGB, as stored (the export's pixel grid), or
    turned by its EXIF orientation when asked. Large scans are expected, so
    Pillow's decompression-bomb guard is off for this file the user chose."""
    try:
        with NoPillowPixelLimit(), Image.open(path) as image:
            rgb = np.asarray(image.convert('RGB'))
    except OSError as error:  # Pillow's UnidentifiedImageError is an OSError
        raise UsageError(f'{path} is not an image Pillow reads ({error})') from error
    orientation = file_orientation(path)
    if apply_exif:
        return np.ascontiguousarray(to_display_orientation(rgb, orientation))
    if orientation != 1:
        print(f'{PROG}: {path} has EXIF orientation {orientation}; drawn as stored, as '
              'infer reads it (--apply-exif for an export made with infer --apply-exif)',
              file=sys.stderr)
    return rgb


def read_features(path: str) -> List[Feature]:
    """The polygonal features of a GeoJSON FeatureCollection. Anything else is
    refused by name: a point or line would not show what the export claims."""
    try:
        with open(path, encoding='utf-8') as stream:
            data = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DrawingError(f'{path} is not a readable JSON file ({error})') from error
    if not isinstance(data, dict) or data.get('type') != 'FeatureCollection' \
            or not isinstance(data.get('features'), list):
        raise DrawingError(f'{path} is not a GeoJSON FeatureCollection (a JSON object with '
                           '"type": "FeatureCollection" and a "features" list)')
    return [read_feature(feature, f'{path}: feature {number}')
            for number, feature in enumerate(data['features'])]


def read_feature(feature, where: str) -> Feature:
    """One feature as a :class:`Feature`, its geometry checked by shapely."""
    if not isinstance(feature, dict) or not isinstance(feature.get('geometry'), dict):
        raise DrawingError(f'{where} is not a Feature with a geometry')
    geometry = feature['geometry']
    if geometry.get('type') not in POLYGONAL:
        raise DrawingError(f'{where} is a {geometry.get("type")!r}; only Polygon and '
                           'MultiPolygon regions are drawn')
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, IndexError, AttributeError) as error:
        raise DrawingError(f'{where}: its coordinates are not a valid '
                           f'{geometry["type"]} ({error})') from error
    properties = feature.get('properties') or {}
    return Feature(feature_class(properties, where), _class_id(properties, where),
                   _file_colour(properties, where), shape)


def feature_class(properties: dict, where: str) -> str:
    """The class a feature names: ``class`` (artseg_mm's export), else QuPath's
    ``classification.name``."""
    name = properties.get('class')
    classification = properties.get('classification')
    if name is None and isinstance(classification, dict):
        name = classification.get('name')
    if not isinstance(name, str) or not name.strip():
        raise DrawingError(f'{where} names no class (properties "class" or '
                           '"classification": {"name": ...})')
    return name


def _class_id(properties: dict, where: str) -> Optional[int]:
    """The ``class_id`` the export wrote, checked to be a whole number."""
    value = properties.get('class_id')
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DrawingError(f'{where}: class_id must be a whole number >= 0, got {value!r}')
    return value


def _file_colour(properties: dict, where: str) -> Optional[RGB]:
    """QuPath's ``classification.color`` ([r, g, b] 0..255), or None."""
    classification = properties.get('classification')
    colour = classification.get('color') if isinstance(classification, dict) else None
    if colour is None:
        return None
    if not (isinstance(colour, list) and len(colour) == 3
            and all(isinstance(v, int) and 0 <= v <= 255 for v in colour)):
        raise DrawingError(f'{where}: classification.color must be [r, g, b] in 0..255, '
                           f'got {colour!r}')
    return tuple(colour)


def model_classes(spec: Optional[str]) -> Optional[List[str]]:
    """The model's class names from ``--classes-from``, or None. The importer's
    resolver is used, so the tools accept the same specifications; it is imported
    here because reading a model's classes loads heavier modules."""
    if spec is None:
        return None
    from artseg_mm.interchange.imports import ImportUsageError, resolve_classes
    try:
        return resolve_classes(spec)
    except ImportUsageError as error:
        raise UsageError(str(error).replace('--classes ', '--classes-from ', 1)) from error


# ---------------------------------------------------------------- classes and colours

def class_order(features: Sequence[Feature], classes: Optional[Sequence[str]]) -> List[str]:
    """The classes to show, in legend order: the model's order with
    ``classes`` (a name it lacks, or a class id that disagrees, is an error: the
    file was made for another model), else by the file's class ids, then names."""
    present = {feature.name for feature in features}
    if classes is None:
        ids = {}
        for feature in features:
            if feature.class_id is not None:
                ids.setdefault(feature.name, feature.class_id)
        return sorted(present, key=lambda name: (ids.get(name, math.inf), name))
    unknown = sorted(present - set(classes))
    if unknown:
        raise DrawingError(f'classes {unknown} are not among the model classes '
                           f'{list(classes)}: the file was made for another model')
    for feature in features:
        if feature.class_id is not None and feature.class_id != classes.index(feature.name):
            raise DrawingError(f'the file gives {feature.name!r} class id '
                               f'{feature.class_id}, the model {classes.index(feature.name)}: '
                               'it was made for another class list')
    return [name for name in classes if name in present]


def colour_table(features: Sequence[Feature], names: Sequence[str],
                 classes: Optional[Sequence[str]]) -> Dict[str, RGB]:
    """Class name -> colour: the file's, else tab10 by the model's class id (with
    ``classes``) or by legend position, so a class keeps its colour across the
    files of one model."""
    given: Dict[str, RGB] = {}
    for feature in features:
        if feature.colour is not None:
            given.setdefault(feature.name, feature.colour)
    table = {}
    for position, name in enumerate(names):
        index = classes.index(name) if classes is not None else position
        default = tuple(int(round(255 * c)) for c in TAB10(index % TAB10.N)[:3])
        table[name] = given.get(name, default)
    return table


# ---------------------------------------------------------------- drawing

def polygon_path(geometry) -> MplPath:
    """One matplotlib path of every ring of a (Multi)Polygon. Exteriors are
    turned counter-clockwise and holes clockwise, so matplotlib's nonzero fill
    leaves the holes open whatever direction the file wrote them in."""
    polygons = list(geometry.geoms) if geometry.geom_type == 'MultiPolygon' else [geometry]
    vertices, codes = [], []
    for polygon in polygons:
        polygon = orient(polygon, sign=1.0)
        for ring in [polygon.exterior, *polygon.interiors]:
            points = np.asarray(ring.coords)
            vertices.extend(points.tolist())
            codes.extend([MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 2)
                         + [MplPath.CLOSEPOLY])
    return MplPath(vertices, codes)


def check_inside(features: Sequence[Feature], width: int, height: int) -> None:
    """Outlines beyond the image were made on another image, or another size
    of this one: drawn, they would mislead."""
    for number, feature in enumerate(features):
        min_x, min_y, max_x, max_y = feature.geometry.bounds
        if min_x < 0 or min_y < 0 or max_x > width or max_y > height:
            raise DrawingError(f'feature {number} ({feature.name}) spans x {min_x:g}..'
                               f'{max_x:g}, y {min_y:g}..{max_y:g}, outside the {width} x '
                               f'{height} image: is this the GeoJSON of this image (or of '
                               'it turned by EXIF, see --apply-exif)?')


def default_scale(width: int, height: int) -> float:
    """Output pixels per image pixel when --scale is not given."""
    long_side = max(width, height)
    if long_side < MIN_LONG_SIDE:
        return float(math.ceil(MIN_LONG_SIDE / long_side))
    if long_side > MAX_LONG_SIDE:
        return MAX_LONG_SIDE / long_side
    return 1.0


def draw(image: np.ndarray, features: Sequence[Feature], names: Sequence[str],
         colours: Dict[str, RGB], out: str, scale: float, title: str) -> Tuple[int, int]:
    """Write the drawing to ``out``; returns its width and height. The image fills
    the figure (no margins), y runs down and the extent is the image's pixel
    edges, so a GeoJSON coordinate lands on the pixel corner it names; the
    legend sits in the top-right corner."""
    height, width = image.shape[:2]
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    figure = Figure(figsize=(out_w / DPI, out_h / DPI), dpi=DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image, extent=(0, width, height, 0),
                interpolation='nearest' if scale >= 1 else 'antialiased')
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    counts = {name: 0 for name in names}
    for feature in features:
        rgb = np.asarray(colours[feature.name]) / 255
        axes.add_patch(PathPatch(polygon_path(feature.geometry), facecolor=(*rgb, FILL_ALPHA),
                                 edgecolor=rgb, linewidth=LINE_WIDTH))
        counts[feature.name] = counts.get(feature.name, 0) + 1
    if names:
        handles = [Patch(facecolor=(*(np.asarray(colours[n]) / 255), FILL_ALPHA),
                         edgecolor=np.asarray(colours[n]) / 255, linewidth=LINE_WIDTH,
                         label=f'{n} ({counts[n]})') for n in names]
        font = max(6.0, min(12.0, min(out_w, out_h) / 40))
        axes.legend(handles=handles, loc='upper right', title=title, fontsize=font,
                    title_fontsize=font, framealpha=0.85)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=DPI)
    return out_w, out_h


def main(argv=None) -> int:
    """Command line: see the module docstring for the exit statuses."""
    args = parse_args(argv)
    try:
        classes = model_classes(args.classes_from)
        image = read_image(args.image, args.apply_exif)
        features = read_features(args.geojson)
        height, width = image.shape[:2]
        check_inside(features, width, height)
        names = class_order(features, classes)
        colours = colour_table(features, names, classes)
        scale = args.scale if args.scale is not None else default_scale(width, height)
        size = draw(image, features, names, colours, args.out, scale,
                    osp.basename(args.geojson))
    except UsageError as error:
        print(f'{PROG}: {error}', file=sys.stderr)
        return 2
    except DrawingError as error:
        print(f'{PROG}: {error}', file=sys.stderr)
        return 1
    if not features:
        print(f'{PROG}: {args.geojson} holds no region; the image is drawn alone')
    print(f'{PROG}: wrote {args.out} ({size[0]} x {size[1]} px, {len(features)} regions)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
