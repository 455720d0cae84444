"""A Label Studio JSON export (a list of tasks) read as masks of the model's class ids.

Why it exists: Label Studio stores brush strokes as its own RLE and polygons in percent of
the image; this turns a task's regions into one mask. Brushes are decoded with
label-studio-converter's brush decoder (a pixel at least half opaque is painted); polygons
are rasterised by ``rasterio.features.rasterize``: a pixel is inside when its centre is
(GDAL's rule, exact). A task's one annotation is used; its one prediction only when asked
(for tasks nobody annotated, e.g. :class:`~artseg_mm.interchange.collection.CollectionExport`'s
tasks imported back uncorrected).

An image's name is the path of its task's ``data.image`` URL (the ``d`` parameter of a
local-storage URL), then that file name without the prefix Label Studio's upload adds; the
images folder is searched for it as
:meth:`~artseg_mm.interchange.imports.images.ImageFolder.find` says.
"""
from pathlib import PurePosixPath
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
from label_studio_converter.brush import decode_rle
from rasterio.features import rasterize

from ...datasets.artefact_classes import BINARY_CLASSES
from .annotated import AnnotatedImage, MaskCanvas, PathLike, Size, load_json
from .classes import LabelNames
from .errors import AnnotationImportError

# Label Studio brushes paint alpha; a pixel at least half opaque is painted
BRUSH_ALPHA_THRESHOLD = 128
# Label Studio results that carry no region (a choice, a text): not part of the mask
LS_NON_REGION_TYPES = ('choices', 'textarea', 'rating', 'taxonomy', 'number', 'datetime',
                       'pairwise', 'relation', 'ranker')
LS_REGION_TYPES = ('brushlabels', 'polygonlabels')
# Label Studio names an uploaded file '<8 hex digits>-<the name it was uploaded with>'
LS_UPLOAD_PREFIX_LEN = 9


def label_studio_images(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
                        overlap: str = 'error',
                        use_predictions: bool = False) -> List[AnnotatedImage]:
    """The annotated tasks of a Label Studio JSON export. A task's one annotation is used
    (cancelled ones left out; several are an error: which correction counts is the
    conservators' call); ``use_predictions`` takes a task's one prediction where it has no
    annotation. A task with neither is not annotated."""
    tasks = load_json(path)
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise AnnotationImportError(f'{path}: a Label Studio JSON export is a list of tasks')
    labels = LabelNames(classes)
    found = []
    for task in tasks:
        where = f'{path}: task {task.get("id")}'
        chosen = _chosen_record(task, use_predictions, where)
        if chosen is None:
            continue
        kind, record = chosen
        where = f'{where} {kind} {record.get("id")}'
        names = image_names(task, where)
        regions = _regions(record.get('result') or [], labels, where)
        found.append(AnnotatedImage(
            names=names, size=_stated_size(regions, where), where=where,
            decode=lambda regions=regions, where=where, name=names[0]: _task_mask(
                regions, where, name, classes, overlap)))
    return found


def _chosen_record(task: dict, use_predictions: bool,
                   where: str) -> Optional[Tuple[str, dict]]:
    """``('annotation', record)`` of a task, else ``('prediction', record)`` when asked,
    else None."""
    for kind, key, allowed in (('annotation', 'annotations', True),
                               ('prediction', 'predictions', use_predictions)):
        records = [r for r in task.get(key) or [] if isinstance(r, dict)
                   and not r.get('was_cancelled')]
        if not allowed or not records:
            continue
        if len(records) > 1:
            raise AnnotationImportError(
                f'{where} has {len(records)} {key} (ids {[r.get("id") for r in records]}); '
                'keep one per task in Label Studio, so the one to train on is clear')
        return kind, records[0]
    return None


def image_names(task: dict, where: str) -> Tuple[str, ...]:
    """The names a task's image may go by: the path of its URL (the ``d`` parameter of a
    local-storage URL), then its file name without the prefix Label Studio's upload adds."""
    data = task.get('data') or {}
    url = data.get('image')
    if url is None:
        texts = [v for v in data.values() if isinstance(v, str)]
        url = texts[0] if len(texts) == 1 else None
    if not isinstance(url, str) or not url:
        raise AnnotationImportError(f'{where}: its data names no image (no "image" key, nor '
                                    f'a single text value among {sorted(data)})')
    parsed = urlparse(url)
    local = parse_qs(parsed.query).get('d')
    path = unquote(local[0] if local else parsed.path)
    name = PurePosixPath(path).name
    head = name[:LS_UPLOAD_PREFIX_LEN]
    if (len(name) > LS_UPLOAD_PREFIX_LEN and head.endswith('-')
            and all(c in '0123456789abcdef' for c in head[:-1])):
        return path, name[LS_UPLOAD_PREFIX_LEN:]
    return (path,)


class _Region(NamedTuple):
    """One Label Studio region: its kind, class id, value and the image size it is for."""
    kind: str
    class_id: int
    value: dict
    size: Size
    where: str


def _regions(results: list, labels: LabelNames, where: str) -> List[_Region]:
    """The region results of an annotation, checked: a known type, one label, a size."""
    regions = []
    for k, result in enumerate(results):
        if not isinstance(result, dict):
            raise AnnotationImportError(f'{where} result {k}: not a JSON object')
        kind = str(result.get('type', '')).lower()
        here = f'{where} result {result.get("id", k)}'
        if kind in LS_NON_REGION_TYPES:
            continue  # a choice or a text about the image, no pixels
        if result.get('image_rotation'):  # where its points lie is not settled: refuse
            raise AnnotationImportError(
                f'{here}: drawn on the image turned by {result["image_rotation"]} degrees; '
                'turn it back in Label Studio and save the annotation again')
        if kind not in LS_REGION_TYPES:
            raise AnnotationImportError(
                f'{here}: a {kind!r} result; only brush ({LS_REGION_TYPES[0]}) and polygon '
                f'({LS_REGION_TYPES[1]}) regions become masks')
        value = result.get('value') or {}
        names = value.get(kind) or value.get('labels') or []
        if len(names) != 1:
            raise AnnotationImportError(f'{here}: a region needs exactly one label, it has '
                                        f'{names}')
        width, height = result.get('original_width'), result.get('original_height')
        if not (isinstance(width, int) and isinstance(height, int) and width > 0
                and height > 0):
            raise AnnotationImportError(f'{here}: needs original_width and original_height')
        regions.append(_Region(kind, labels.id_of(names[0], here), value, (width, height),
                               here))
    return regions


def _stated_size(regions: List[_Region], where: str) -> Optional[Size]:
    """The image size the regions state (None without regions: the file's size is used)."""
    sizes = sorted({r.size for r in regions})
    if len(sizes) > 1:
        raise AnnotationImportError(f'{where}: its results state different image sizes '
                                    f'(width, height) {sizes}')
    return sizes[0] if sizes else None


def _task_mask(regions: List[_Region], where: str, image: str, classes: Sequence[str],
               overlap: str) -> np.ndarray:
    """The mask of one task with regions: painted in the order they are listed."""
    canvas = MaskCanvas(image, _stated_size(regions, where), classes, overlap)
    for region in regions:
        painted = (brush_region(region.value, region.size, region.where)
                   if region.kind == 'brushlabels'
                   else polygon_region(region.value, region.size, region.where))
        canvas.paint(painted, region.class_id, region.where)
    return canvas.mask


def brush_region(value: dict, size: Size, where: str) -> np.ndarray:
    """A brush result's pixels: its RLE decoded to RGBA by label-studio-converter, painted
    where the alpha is at least half."""
    if value.get('format') != 'rle' or not isinstance(value.get('rle'), list):
        raise AnnotationImportError(f'{where}: a brush result needs format "rle" and an '
                                    '"rle" list')
    width, height = size
    flat = decode_rle(value['rle'])
    if flat.size != width * height * 4:
        raise AnnotationImportError(
            f'{where}: its RLE holds {flat.size} values, an RGBA image of '
            f'{width}x{height} px {width * height * 4}')
    return flat.reshape(height, width, 4)[..., 3] >= BRUSH_ALPHA_THRESHOLD


def polygon_region(value: dict, size: Size, where: str) -> np.ndarray:
    """A polygon result's pixels: ``points`` in percent of the image, rasterised by
    rasterio (a pixel is inside when its centre is; pixel (row, col) spans
    [col, col + 1) x [row, row + 1))."""
    points = value.get('points')
    if not (isinstance(points, list) and len(points) >= 3 and all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in points)):
        raise AnnotationImportError(f'{where}: a polygon needs at least 3 [x, y] points')
    width, height = size
    ring = [(float(x) * width / 100.0, float(y) * height / 100.0) for x, y in points]
    shape = dict(type='Polygon', coordinates=[ring + ring[:1]])
    filled = rasterize([(shape, 1)], out_shape=(height, width), fill=0, dtype='uint8',
                       all_touched=False)
    return filled.astype(bool)


def read_label_studio(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
                      overlap: str = 'error', use_predictions: bool = False
                      ) -> Iterator[Tuple[str, np.ndarray]]:
    """``(image name, H x W uint8 class ids)`` of a Label Studio JSON export's annotated
    tasks; ids index ``classes``. A task without regions is all Clean at its image's size,
    which only the image file tells: :func:`~artseg_mm.interchange.imports.read_annotations`
    (given the images) handles that; here it is an error."""
    for image in label_studio_images(path, classes, overlap, use_predictions):
        if image.size is None:
            raise AnnotationImportError(f'{image.where}: no regions, so no size for its '
                                        'all-Clean mask; read it with its image')
        yield image.names[0], image.decode()
