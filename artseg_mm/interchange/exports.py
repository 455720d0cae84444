"""Predicted damage masks written in the formats that conservators' and annotators'
tools read.

Why it exists: a prediction is only useful where the people who check and correct
it work: GIS and pathology viewers (QGIS, QuPath: GeoJSON), training pipelines
(COCO), annotation tools (CVAT, Label Studio) and IIIF viewers (Mirador,
Annotorious: W3C Web Annotations). Each writer takes an H x W mask of class ids;
class 0 (Clean, the background) and 255 (not segmented) are never exported, so
both read back as "nothing annotated here". Every format is produced with, or
checked against, its own library (pycocotools, rasterio, label-studio-converter,
Pillow). The importer (:mod:`artseg_mm.interchange.imports`) reads the COCO, CVAT and
Label Studio files back, with the checks it applies to corrected annotations, and
:mod:`artseg_mm.interchange.readers` the GeoJSON and IIIF ones, which have no import.
These writers make one file per image; :mod:`artseg_mm.interchange.collection` gathers a
folder of images into one file per format, as annotation tools import them.
"""
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import quoteattr

import numpy as np
from label_studio_converter import brush
from PIL import Image
from pycocotools import mask as coco_mask

from .polygons import (BACKGROUND_ID, Region, check_classes, check_mask, class_colours,
                       find_regions, label_regions, present_classes, svg_path,
                       voc_colour_table)

FORMATS = ('geojson', 'coco', 'cvat', 'labelstudio', 'iiif')
FILE_SUFFIXES = {
    'geojson': '.geojson',
    'coco': '.coco.json',
    'cvat': '.cvat.zip',
    'labelstudio': '.labelstudio.json',
    'iiif': '.iiif.json',
}
DEFAULT_MODEL_VERSION = 'artseg-mm'
# With no canvas given, IIIF targets a canvas id relative to wherever the
# annotation page is served; a viewer needs the real canvas id to show it.
DEFAULT_IIIF_CANVAS = '{name}'
WEB_ANNOTATION_CONTEXT = 'http://www.w3.org/ns/anno.jsonld'
IIIF_MOTIVATION = 'tagging'
# the names a Label Studio labeling config must give its tags (see labelstudio_config)
LABELSTUDIO_FROM_NAME = 'tag'
LABELSTUDIO_TO_NAME = 'image'
# Label Studio's brush RLE carries 4 bytes (RGBA) per pixel in a 32-bit count
LABELSTUDIO_MAX_PIXELS = (2 ** 32 - 1) // 4
CVAT_LABELMAP_HEADER = '# label:color_rgb:parts:actions'
CVAT_LABELMAP_FILE = 'labelmap.txt'
CVAT_CLASS_DIR = 'SegmentationClass'
CVAT_OBJECT_DIR = 'SegmentationObject'
# CVAT names the background label so and leaves its pixels unannotated on import
CVAT_BACKGROUND_LABEL = 'background'
CVAT_SUBSET_LIST = 'ImageSets/Segmentation/default.txt'
# datumaro (CVAT's reader) treats VOC instance index 255 as "ignored"
VOC_IGNORED_INSTANCE = 255


# ---------------------------------------------------------------- GeoJSON

def to_geojson(mask, classes: Sequence[str], palette=None, *, name: str,
               px_per_mm=None) -> dict:
    """A GeoJSON FeatureCollection with one Feature per region.

    Coordinates are pixels (x right, y down, origin at the top-left corner of the
    image), which is what QuPath expects; QGIS shows an image without a
    georeference with y growing upwards, so there the outlines appear mirrored
    unless the layer is flipped. Properties: ``class``, ``class_id``, ``area_px``,
    ``area_mm2`` (null without a scale), ``image``, plus QuPath's ``objectType``
    and ``classification`` so QuPath imports the class with its colour.
    ``px_per_mm``: (x, y) pixels per millimetre (a
    :class:`~artseg_mm.datasets.image_resolution.Resolution` works too) or None.
    """
    names = check_classes(classes)
    colours = class_colours(names, palette)
    mm2_per_px = _mm2_per_px(px_per_mm)
    features = []
    for region in find_regions(mask, names):
        class_name = names[region.class_id]
        features.append({
            'type': 'Feature',
            'id': region.index,
            'geometry': region.geometry,
            'properties': {
                'class': class_name,
                'class_id': region.class_id,
                'area_px': region.area_px,
                'area_mm2': None if mm2_per_px is None else region.area_px * mm2_per_px,
                'image': name,
                'objectType': 'annotation',
                'classification': {'name': class_name,
                                   'color': list(colours[region.class_id])},
            },
        })
    return {'type': 'FeatureCollection', 'features': features}


def _mm2_per_px(px_per_mm) -> Optional[float]:
    """The area of one pixel in mm², or None without a scale. Refused when the
    scale is not two positive finite numbers: a wrong scale would give wrong areas
    that look right."""
    if px_per_mm is None:
        return None
    try:
        x, y = float(px_per_mm[0]), float(px_per_mm[1])
    except (TypeError, IndexError, ValueError) as error:
        raise ValueError(f'px_per_mm is (x, y) pixels per millimetre, got '
                         f'{px_per_mm!r}') from error
    if not all(math.isfinite(v) and v > 0 for v in (x, y)):
        raise ValueError(f'px_per_mm must be positive and finite, got {(x, y)}')
    return 1.0 / (x * y)


# ---------------------------------------------------------------- COCO

def to_coco(mask, classes: Sequence[str], *, name: str, image_path: Optional[str] = None,
            model_version: str = DEFAULT_MODEL_VERSION) -> dict:
    """A COCO document for one image: one annotation per region, its segmentation
    a compressed RLE (``counts`` as text, so the document is JSON), ``iscrowd`` 0.

    Categories are all the model's classes but the background, their ids the class
    ids, so a category id means the same as the model's output. ``file_name`` is
    the base name of ``image_path`` when given (COCO tools join it to an image
    folder), else ``name``."""
    names = check_classes(classes)
    array = check_mask(mask, names)
    height, width = array.shape
    annotations = []
    for region in find_regions(array, names, outlines=False):
        rle = region_rle(region, height, width)
        annotations.append({
            'id': region.index,
            'image_id': 1,
            'category_id': region.class_id,
            'segmentation': {'size': [height, width], 'counts': rle['counts'].decode('ascii')},
            'area': region.area_px,
            'bbox': list(region.bbox),
            'iscrowd': 0,
        })
    file_name = os.path.basename(image_path) if image_path else name
    return {
        'info': {'description': f'damage predicted for {name}', 'version': model_version},
        'images': [{'id': 1, 'file_name': file_name, 'width': width, 'height': height}],
        'categories': coco_categories(names),
        'annotations': annotations,
    }


def coco_categories(classes: Sequence[str]) -> List[dict]:
    """COCO categories: every class but the background, its id the class id, so a
    category id means the same as the model's output."""
    names = check_classes(classes)
    return [{'id': class_id, 'name': names[class_id], 'supercategory': 'damage'}
            for class_id in range(len(names)) if class_id != BACKGROUND_ID]


def region_rle(region: Region, height: int, width: int) -> dict:
    """The compressed COCO RLE of one region, from its pixels' runs in column-major
    order; pycocotools compresses them. Encoding a full-image mask per region would
    cost a pass over the whole image for every speck of dust."""
    linear = np.sort(region.cols.astype(np.int64) * height + region.rows)
    breaks = np.flatnonzero(np.diff(linear) != 1) + 1
    starts = linear[np.concatenate(([0], breaks))]
    ends = linear[np.concatenate((breaks - 1, [linear.size - 1]))] + 1
    counts = np.empty(2 * starts.size, dtype=np.int64)
    counts[0::2] = starts - np.concatenate(([0], ends[:-1]))  # background before a run
    counts[1::2] = ends - starts
    tail = height * width - int(ends[-1])
    counts = counts.tolist() + ([tail] if tail else [])
    return coco_mask.frPyObjects({'counts': counts, 'size': [height, width]}, height, width)


# ---------------------------------------------------------------- CVAT

def write_cvat_zip(mask, classes: Sequence[str], palette=None, *, path, name: str) -> Path:
    """A CVAT "Segmentation mask 1.1" archive (Pascal VOC layout) at ``path``.

    ``labelmap.txt`` lists ``background`` first, then every other class with a
    colour unique to it (the model's palette where it allows, see
    :func:`~artseg_mm.interchange.polygons.class_colours`), because CVAT tells the
    classes apart by colour alone. ``SegmentationClass/<name>.png`` paints each
    pixel its class colour; not-segmented pixels are painted as background.
    ``SegmentationObject/<name>.png`` gives each region its own colour of the VOC
    colour map, skipping index 255, which CVAT reads as "ignored". CVAT's reader
    knows only the first 256 VOC colours, so it reads the object masks of at most
    254 regions; the class masks have no such limit."""
    names = check_cvat_classes(classes)
    array = check_mask(mask, names)
    _check_file_name(name)
    colours = class_colours(names, palette)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(CVAT_LABELMAP_FILE, cvat_labelmap(names, colours))
        for member, data in cvat_image_members(array, colours, name):
            archive.writestr(member, data)
        archive.writestr(CVAT_SUBSET_LIST, f'{name}\n')
    return path


def check_cvat_classes(classes: Sequence[str]) -> List[str]:
    """The class names, refused when one cannot be a line of ``labelmap.txt`` (which
    is colon separated)."""
    names = check_classes(classes)
    for class_name in names:
        if ':' in class_name or '\n' in class_name:
            raise ValueError(f'CVAT labelmap lines are colon separated; class name '
                             f'{class_name!r} cannot be written')
    return names


def cvat_image_members(mask: np.ndarray, colours: Sequence[Tuple[int, int, int]],
                       name: str) -> List[Tuple[str, bytes]]:
    """The archive members of one image: ``SegmentationClass/<name>.png`` and
    ``SegmentationObject/<name>.png`` (``name`` may hold '/' folders, as CVAT's image
    names do) as (member name, PNG bytes); ``mask`` is a checked mask, ``colours`` one
    per class (:func:`~artseg_mm.interchange.polygons.class_colours`)."""
    return [(f'{CVAT_CLASS_DIR}/{name}.png', _png(_class_image(mask, colours))),
            (f'{CVAT_OBJECT_DIR}/{name}.png', _png(_object_image(mask, len(colours))))]


def cvat_labelmap(classes: Sequence[str], colours: Sequence[Tuple[int, int, int]]) -> str:
    """The text of CVAT's ``labelmap.txt``: line i names class i, so a colour's line
    number is its class id."""
    lines = [CVAT_LABELMAP_HEADER]
    for class_id, (class_name, colour) in enumerate(zip(classes, colours)):
        label = CVAT_BACKGROUND_LABEL if class_id == BACKGROUND_ID else class_name
        lines.append(f'{label}:{colour[0]},{colour[1]},{colour[2]}::')
    return '\n'.join(lines) + '\n'


def _class_image(mask: np.ndarray, colours) -> np.ndarray:
    """The RGB class mask; not-segmented pixels take the background colour, as
    CVAT has no colour for "not annotated" other than the background."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:len(colours)] = np.asarray(colours, dtype=np.uint8)
    return table[mask]


def _object_image(mask: np.ndarray, n_classes: int) -> np.ndarray:
    """The RGB instance mask: region k in VOC colour k (k >= 255 shifted by one to
    step over the ignored index), background black."""
    labels, region_class = label_regions(mask, n_classes)
    indices = np.arange(len(region_class), dtype=np.int64)
    indices[indices >= VOC_IGNORED_INSTANCE] += 1
    table = voc_colour_table(int(indices[-1]) + 1)[indices]
    return table[labels]


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode='RGB').save(buffer, format='PNG')
    return buffer.getvalue()


# ---------------------------------------------------------------- Label Studio

def to_labelstudio(mask, classes: Sequence[str], *, name: str,
                   image_path: Optional[str] = None,
                   model_version: str = DEFAULT_MODEL_VERSION,
                   score: Optional[float] = None) -> List[dict]:
    """Label Studio tasks (one) with the prediction as brush masks, for import as
    pre-annotations.

    One ``brushlabels`` result per class present, encoded by
    label-studio-converter's brush RLE (the RGBA image Label Studio paints, its
    alpha 255 on the class). It matches a labeling config such as
    :func:`labelstudio_config` writes::

        <View>
          <Image name="image" value="$image"/>
          <BrushLabels name="tag" toName="image"> <Label value="..."/> ... </BrushLabels>
        </View>

    ``data.image`` is ``image_path`` (a URL or a path Label Studio serves), else
    ``name``. ``score``: the model's mean confidence, omitted when None."""
    names = check_classes(classes)
    array = check_mask(mask, names)
    height, width = array.shape
    if array.size > LABELSTUDIO_MAX_PIXELS:
        raise ValueError(f'Label Studio brush masks hold at most {LABELSTUDIO_MAX_PIXELS} '
                         f'pixels; this mask has {array.size}')
    results = []
    for class_id in present_classes(array, len(names)):
        alpha = np.where(array == class_id, 255, 0).astype(np.uint8)
        results.append({
            'id': f'class-{class_id}',
            'from_name': LABELSTUDIO_FROM_NAME,
            'to_name': LABELSTUDIO_TO_NAME,
            'type': 'brushlabels',
            'original_width': width,
            'original_height': height,
            'image_rotation': 0,
            'value': {'format': 'rle', 'rle': brush.mask2rle(alpha),
                      'brushlabels': [names[class_id]]},
        })
    prediction = {'model_version': model_version, 'result': results}
    if score is not None:
        prediction['score'] = float(score)
    return [{'data': {'image': image_path if image_path else name},
             'predictions': [prediction]}]


def labelstudio_config(classes: Sequence[str], palette=None) -> str:
    """A Label Studio labeling config that :func:`to_labelstudio`'s predictions fit:
    a BrushLabels tag named ``tag`` on an Image named ``image``, one Label per
    class but the background, in the export colours."""
    names = check_classes(classes)
    colours = class_colours(names, palette)
    labels = ''.join(
        f'    <Label value={quoteattr(names[class_id])} '
        f'background="#{r:02X}{g:02X}{b:02X}"/>\n'
        for class_id, (r, g, b) in enumerate(colours) if class_id != BACKGROUND_ID)
    return (f'<View>\n  <Image name="{LABELSTUDIO_TO_NAME}" value="$image" zoom="true"/>\n'
            f'  <BrushLabels name="{LABELSTUDIO_FROM_NAME}" toName="{LABELSTUDIO_TO_NAME}">\n'
            f'{labels}  </BrushLabels>\n</View>\n')


# ---------------------------------------------------------------- IIIF / Web Annotation

def to_iiif(mask, classes: Sequence[str], *, name: str, canvas: Optional[str] = None,
            model_version: str = DEFAULT_MODEL_VERSION) -> dict:
    """A W3C Web Annotation page (IIIF Presentation 3 style) with one annotation
    per region: the class name as a TextualBody, the outline as an SvgSelector path
    with ``fill-rule="evenodd"`` (holes as extra subpaths).

    ``canvas``: the canvas id, where ``{name}`` is replaced by ``name`` (e.g.
    ``https://example.org/iiif/{name}/canvas/1``). Without one the target is the
    relative id ``<name>``, which a viewer can only resolve when told the real
    canvas; pass the manifest's canvas id for a page a viewer loads as is."""
    names = check_classes(classes)
    canvas_id = (canvas if canvas is not None else DEFAULT_IIIF_CANVAS).replace('{name}', name)
    page_id = f'{canvas_id}/annotation-page/damage'
    items = []
    for region in find_regions(mask, names):
        svg = ('<svg xmlns="http://www.w3.org/2000/svg"><path fill-rule="evenodd" '
               f'd="{svg_path(region.geometry)}"/></svg>')
        items.append({
            'id': f'{page_id}/{region.index}',
            'type': 'Annotation',
            'motivation': IIIF_MOTIVATION,
            'body': {'type': 'TextualBody', 'value': names[region.class_id],
                     'purpose': IIIF_MOTIVATION, 'format': 'text/plain'},
            'target': {'source': canvas_id,
                       'selector': {'type': 'SvgSelector', 'value': svg}},
        })
    return {'@context': WEB_ANNOTATION_CONTEXT, 'id': page_id, 'type': 'AnnotationPage',
            'generator': {'type': 'Software', 'name': model_version}, 'items': items}


# ---------------------------------------------------------------- files

def export_masks(mask, classes: Sequence[str], palette, out_dir, name: str,
                 formats: Sequence[str], px_per_mm=None,
                 model_version: str = DEFAULT_MODEL_VERSION,
                 image_path: Optional[str] = None, iiif_canvas: Optional[str] = None,
                 score: Optional[float] = None) -> Dict[str, Path]:
    """Write ``mask`` in each of ``formats`` (see :data:`FORMATS`) to
    ``<out_dir>/<name><suffix>`` (suffixes in :data:`FILE_SUFFIXES`) and return
    format -> path. Every name is checked before anything is written, so a typo
    does not leave half an export behind."""
    if isinstance(formats, str):  # one format named alone, not its letters
        formats = [formats]
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f'unknown export formats {unknown}; allowed: {list(FORMATS)}')
    if not formats:
        raise ValueError(f'no export format asked; allowed: {list(FORMATS)}')
    _check_file_name(name)
    names = check_classes(classes)
    array = check_mask(mask, names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt in dict.fromkeys(formats):  # each once, in the order asked
        path = out_dir / f'{name}{FILE_SUFFIXES[fmt]}'
        if fmt == 'cvat':
            write_cvat_zip(array, names, palette, path=path, name=name)
        else:
            write_json(_document(fmt, array, names, palette, name, px_per_mm,
                                 model_version, image_path, iiif_canvas, score), path)
        written[fmt] = path
    return written


def _document(fmt, mask, classes, palette, name, px_per_mm, model_version, image_path,
              iiif_canvas, score):
    """The JSON document of one format (CVAT, a zip, is written on its own)."""
    if fmt == 'geojson':
        return to_geojson(mask, classes, palette, name=name, px_per_mm=px_per_mm)
    if fmt == 'coco':
        return to_coco(mask, classes, name=name, image_path=image_path,
                       model_version=model_version)
    if fmt == 'labelstudio':
        return to_labelstudio(mask, classes, name=name, image_path=image_path,
                              model_version=model_version, score=score)
    if fmt == 'iiif':
        return to_iiif(mask, classes, name=name, canvas=iiif_canvas,
                       model_version=model_version)
    raise ValueError(f'{fmt!r} is not a JSON export format')


def write_json(document, path) -> Path:
    """Write ``document`` as compact UTF-8 JSON (RLE lists make indented files
    several times larger for no reader's benefit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as stream:
        json.dump(document, stream, ensure_ascii=False, separators=(',', ':'))
    return path


def _check_file_name(name: str) -> None:
    """``name`` becomes a file name (and CVAT's image name, which has no extension),
    so it must not be empty or hold a path."""
    if not isinstance(name, str) or not name or name in ('.', '..') \
            or '/' in name or '\\' in name or os.sep in name:
        raise ValueError(f'name must be a plain file name without folders, got {name!r}')
