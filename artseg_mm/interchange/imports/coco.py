"""A COCO JSON read as masks of the model's class ids.

Why it exists: COCO is what most annotation tools (and
:class:`~artseg_mm.interchange.collection.CollectionExport`) write for segmentation; this
turns each image record's annotations into one mask. Each annotation's ``segmentation`` is
RLE (compressed or not) or polygons, decoded with pycocotools as its ``annToMask`` does
(polygons filled by pycocotools, as COCO tools fill them: the same pixels as the
pixel-centre rule for vertices on pixel corners, while for vertices between them its
subsampled fill can differ by a pixel along an edge). A category's name is its label.

An image's name is its record's ``file_name``, folders included (``box_2/page.png``): the
images folder is searched for it as
:meth:`~artseg_mm.interchange.imports.images.ImageFolder.find` says, so folders of the
tool's own (an absolute path, a server's upload folder) are dropped until it names a file.
"""
import warnings
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from pycocotools import mask as coco_mask

from ...datasets.artefact_classes import BINARY_CLASSES
from .annotated import AnnotatedImage, MaskCanvas, PathLike, Size, decoded, listed, load_json
from .classes import LabelNames
from .errors import AnnotationImportError

# pycocotools' compiled decoder hands numpy 2 an array-like without the ``copy``
# argument; the decoded mask is right, and only a pycocotools release can fix it
PYCOCOTOOLS_NUMPY2_WARNING = "__array__ implementation doesn't accept a copy keyword"


def _records(data: dict, key: str, path: PathLike) -> list:
    """``data[key]``, a list of JSON objects."""
    records = data.get(key)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise AnnotationImportError(f'{path}: "{key}" must be a list of objects (a COCO '
                                    'file has images, annotations and categories)')
    return records


def coco_images(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
                overlap: str = 'error') -> List[AnnotatedImage]:
    """The images of a COCO JSON. Every image record is annotated (one without
    annotations is all Clean); a category's name is its label."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise AnnotationImportError(f'{path}: a COCO file is a JSON object')
    images, anns = _records(data, 'images', path), _records(data, 'annotations', path)
    labels = LabelNames(classes)
    used = {a.get('category_id') for a in anns}  # an unused category's name may be anything
    category_ids = {c.get('id'): labels.id_of(c.get('name'), f'{path}: category {c.get("id")}')
                    for c in _records(data, 'categories', path) if c.get('id') in used}
    by_image: Dict[object, list] = {}
    for record in images:
        if record.get('id') in by_image:
            raise AnnotationImportError(f'{path}: image id {record.get("id")!r} is listed '
                                        'twice in "images"')
        by_image[record.get('id')] = []
    for ann in anns:
        where = f'{path}: annotation {ann.get("id")}'
        if ann.get('image_id') not in by_image:
            raise AnnotationImportError(f'{where} is for image id {ann.get("image_id")!r}, '
                                        'which "images" does not list')
        if ann.get('category_id') not in category_ids:
            raise AnnotationImportError(f'{where} has category id {ann.get("category_id")!r}, '
                                        'which "categories" does not list')
        by_image[ann['image_id']].append(ann)
    found = []
    for record in images:
        name, size = _coco_image_record(record, path)
        found.append(AnnotatedImage(
            names=(name,), size=size, where=f'{path}: image {record.get("id")}',
            decode=lambda name=name, size=size, anns=by_image[record.get('id')]: _coco_mask(
                path, name, size, anns, category_ids, classes, overlap)))
    return found


def _coco_image_record(record: dict, path: PathLike) -> Tuple[str, Size]:
    """An image record's file name (with its folders, '/' separated) and size."""
    name, width, height = record.get('file_name'), record.get('width'), record.get('height')
    if not (isinstance(name, str) and name and isinstance(width, int)
            and isinstance(height, int) and width > 0 and height > 0):
        raise AnnotationImportError(f'{path}: image {record.get("id")} needs a file_name and '
                                    f'a positive width and height, got {record}')
    return name.replace('\\', '/'), (width, height)


def _coco_mask(path: PathLike, name: str, size: Size, anns: list,
               category_ids: Dict[object, int], classes: Sequence[str],
               overlap: str) -> np.ndarray:
    """The mask of one COCO image: its annotations painted in the order listed.

    Consecutive annotations of one class are merged into one RLE by pycocotools and decoded
    once: painting them one by one would give the same mask (one class cannot clash with
    itself) but cost a pass over the whole image per annotation, hours for a scan with
    thousands of dust specks, as a model's export has."""
    canvas = MaskCanvas(name, size, classes, overlap)
    for class_id, run in _runs_of_one_class(anns, category_ids):
        ids = [str(ann.get('id')) for ann in run]
        where = (f'{path}: annotation {ids[0]}' if len(ids) == 1
                 else f'{path}: annotations {listed(ids)}')
        rles = [coco_rle(ann.get('segmentation'), size, f'{path}: annotation {ann.get("id")}')
                for ann in run]
        merged = rles[0] if len(rles) == 1 else coco_mask.merge(rles, intersect=False)
        canvas.paint(decode_rle(merged), class_id, where)
    return canvas.mask


def _runs_of_one_class(anns: list, category_ids: Dict[object, int]
                       ) -> Iterator[Tuple[int, list]]:
    """``(class id, annotations)`` of each run of consecutive annotations of one class, in
    the order listed."""
    run: list = []
    for ann in anns:
        class_id = category_ids[ann['category_id']]
        if run and category_ids[run[-1]['category_id']] != class_id:
            yield category_ids[run[-1]['category_id']], run
            run = []
        run.append(ann)
    if run:
        yield category_ids[run[-1]['category_id']], run


def coco_rle(segmentation, size: Size, where: str) -> dict:
    """One annotation's segmentation as the RLE pycocotools decodes, checked against the
    image's size: RLE (compressed ``counts`` text or uncompressed list) or polygons
    (``[[x, y, ...]]``, which pycocotools fills)."""
    width, height = size
    if isinstance(segmentation, dict):
        if list(segmentation.get('size') or []) != [height, width]:
            raise AnnotationImportError(
                f'{where}: its RLE is for {segmentation.get("size")} ([height, width]), the '
                f'image is [{height}, {width}]')
        counts = segmentation.get('counts')
        if isinstance(counts, list):
            return coco_mask.frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            return dict(size=[height, width], counts=counts.encode('ascii'))
        if isinstance(counts, bytes):
            return dict(size=[height, width], counts=counts)
        raise AnnotationImportError(f'{where}: RLE "counts" must be a list or a string')
    if isinstance(segmentation, list) and segmentation and all(
            isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
            and all(isinstance(v, (int, float)) for v in p) for p in segmentation):
        return coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    raise AnnotationImportError(
        f'{where}: segmentation must be RLE ({{"size", "counts"}}) or a list of polygons '
        f'[[x1, y1, x2, y2, x3, y3, ...]], got {str(segmentation)[:80]}')


def decode_rle(rle: dict) -> np.ndarray:
    """The pixels (bool H x W) of a pycocotools RLE."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=PYCOCOTOOLS_NUMPY2_WARNING,
                                category=DeprecationWarning)
        pixels = coco_mask.decode(rle)
    return np.ascontiguousarray(pixels).astype(bool)


def coco_region(segmentation, size: Size, where: str) -> np.ndarray:
    """One annotation's pixels (bool H x W), as pycocotools' ``annToMask`` decodes them."""
    return decode_rle(coco_rle(segmentation, size, where))


def read_coco(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
              overlap: str = 'error') -> Iterator[Tuple[str, np.ndarray]]:
    """``(image file name, H x W uint8 class ids)`` of a COCO JSON, at the sizes its image
    records state; ids index ``classes``."""
    return decoded(coco_images(path, classes, overlap))
