"""Class-id masks read back from the GeoJSON and IIIF exports, formats with no import.

Why it exists: to check that those exports say what the mask says (the tests read them
back), and to bring outlines corrected in QuPath or a IIIF viewer back as masks. COCO,
CVAT and Label Studio files are read by the importer (:mod:`artseg_mm.interchange.imports`)
only, with the checks it applies to corrected annotations. Pixels no annotation covers get
``fill`` (0, Clean, by default: the formats carry no "not segmented" value). Where
annotations overlap, the later one wins.
"""
from typing import List, Sequence, Tuple
from xml.etree import ElementTree

import numpy as np
import rasterio.features
from rasterio.enums import MergeAlg
from rasterio.transform import Affine

from .polygons import check_classes, parse_svg_path

SVG_NAMESPACE = '{http://www.w3.org/2000/svg}'


def _class_id(class_name, classes: List[str], where: str) -> int:
    """The model's id of ``class_name``; a name the model does not know is refused,
    since guessing would relabel damage."""
    if class_name not in classes:
        raise ValueError(f'{where}: class {class_name!r} is not one of {classes}')
    return classes.index(class_name)


def _empty(shape, fill: int) -> np.ndarray:
    height, width = (int(v) for v in shape)
    return np.full((height, width), fill, dtype=np.uint8)


def rasterize_geojson(doc: dict, shape: Tuple[int, int], classes: Sequence[str],
                      fill: int = 0) -> np.ndarray:
    """The mask of a GeoJSON FeatureCollection in pixel coordinates, burnt by
    ``rasterio.features.rasterize`` (a pixel is inside when its centre is); each
    feature's class is its ``class`` property."""
    names = check_classes(classes)
    shapes = [(feature['geometry'],
               _class_id(feature['properties']['class'], names, f"feature {feature.get('id')}"))
              for feature in doc['features']]
    if not shapes:
        return _empty(shape, fill)
    return rasterio.features.rasterize(shapes, out_shape=tuple(shape), fill=fill,
                                       dtype='uint8')


def mask_from_iiif(doc: dict, shape: Tuple[int, int], classes: Sequence[str],
                   fill: int = 0) -> np.ndarray:
    """The mask of a Web Annotation page whose targets are SvgSelector paths (read
    with even-odd filling, as written), rasterised with rasterio by pixel centres;
    each annotation's class is its TextualBody's value."""
    names = check_classes(classes)
    out = _empty(shape, fill)
    for annotation in doc['items']:
        class_id = _class_id(_body_value(annotation), names,
                             f"annotation {annotation.get('id')}")
        rings = [ring for path in _svg_paths(annotation) for ring in parse_svg_path(path)]
        if not rings:
            continue
        _burn_evenodd(out, rings, class_id)
    return out


def _burn_evenodd(out: np.ndarray, rings: list, class_id: int) -> None:
    """Set ``class_id`` where an odd number of ``rings`` cover a pixel's centre (SVG's
    even-odd rule), rasterising only the rings' bounding box: a full-image raster
    per annotation would cost a pass over the image for every speck of dust."""
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]
    height, width = out.shape
    left, top = max(int(np.floor(min(xs))), 0), max(int(np.floor(min(ys))), 0)
    right, bottom = min(int(np.ceil(max(xs))), width), min(int(np.ceil(max(ys))), height)
    if right <= left or bottom <= top:
        return  # wholly outside the image
    polygons = [({'type': 'Polygon', 'coordinates': [ring]}, 1) for ring in rings]
    crossings = rasterio.features.rasterize(
        polygons, out_shape=(bottom - top, right - left), fill=0, dtype='int32',
        merge_alg=MergeAlg.add, transform=Affine.translation(left, top))
    window = out[top:bottom, left:right]
    window[crossings % 2 == 1] = class_id


def _body_value(annotation: dict) -> str:
    """The class name: the value of the annotation's (first) TextualBody."""
    bodies = annotation['body'] if isinstance(annotation['body'], list) else [annotation['body']]
    for body in bodies:
        if body.get('type') == 'TextualBody':
            return body['value']
    raise ValueError(f"annotation {annotation.get('id')} has no TextualBody naming a class")


def _svg_paths(annotation: dict) -> List[str]:
    """The path data of the annotation's SvgSelector."""
    targets = annotation['target'] if isinstance(annotation['target'], list) \
        else [annotation['target']]
    for target in targets:
        selectors = target.get('selector', [])
        selectors = selectors if isinstance(selectors, list) else [selectors]
        for selector in selectors:
            if selector.get('type') == 'SvgSelector':
                svg = ElementTree.fromstring(selector['value'])
                paths = [element.get('d', '') for element in svg.iter()
                         if element.tag in (f'{SVG_NAMESPACE}path', 'path')]
                if not paths:
                    raise ValueError(f"annotation {annotation.get('id')}: the SVG holds "
                                     'no path (only paths are read)')
                return paths
    raise ValueError(f"annotation {annotation.get('id')} has no SvgSelector")
