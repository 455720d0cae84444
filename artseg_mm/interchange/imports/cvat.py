"""CVAT's "Segmentation mask 1.1" export read as masks of the model's class ids.

Why it exists: CVAT exports corrected masks as colour images (``SegmentationClass/<image>.png``)
plus ``labelmap.txt`` naming each colour's label; this turns them back into class ids, and
refuses what cannot be trained on (a colour nobody named, a colour given to two labels).
The export may be the zip CVAT writes or the folder it unpacks to; members are read, never
extracted, so no name in a zip can write anywhere.

An image's name is its mask's path under ``SegmentationClass/`` without ``.png``; CVAT keeps
the folders of a task's image names there (``SegmentationClass/box_2/page.png`` is image
``box_2/page``), and so does :class:`~artseg_mm.interchange.collection.CollectionExport`.
"""
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from PIL import Image

from ...datasets.artefact_classes import BINARY_CLASSES
from ...datasets.orientation import NoPillowPixelLimit
from ..exports import CVAT_CLASS_DIR, CVAT_LABELMAP_FILE
from .annotated import AnnotatedImage, PathLike, decoded
from .classes import LabelNames
from .errors import AnnotationImportError, ImportUsageError

RGB = Tuple[int, int, int]
MASK_SUFFIX = '.png'


class ExportFiles:
    """The files of a zip or of a folder, by their posix path inside it."""

    def __init__(self, path: Path):
        self.path = path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                self.names = [n for n in archive.namelist() if not n.endswith('/')]
        elif path.is_dir():
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob('*')
                                if p.is_file())
        else:
            raise ImportUsageError(f'{path} is neither a zip file nor a folder (a CVAT '
                                   '"Segmentation mask 1.1" export is one of them)')

    def read(self, name: str) -> bytes:
        """The bytes of one file; members are read, never extracted."""
        if self.path.is_dir():
            return (self.path / name).read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(name)


def parse_cvat_labelmap(text: str, where: str) -> Dict[RGB, str]:
    """``labelmap.txt`` -> {(r, g, b): label}, in the file's order: lines
    ``name:r,g,b:parts:actions``, '#' comments. A colour given to two labels is refused: its
    pixels would be ambiguous."""
    colours: Dict[RGB, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        fields = line.rsplit(':', 3)  # a label name may hold ':', the other fields not
        try:
            rgb = tuple(int(v) for v in fields[1].split(','))
        except (IndexError, ValueError):
            rgb = ()
        if len(fields) != 4 or len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise AnnotationImportError(f'{where} line {number}: expected '
                                        f"'name:r,g,b:parts:actions', got {line!r}")
        if rgb in colours:
            raise AnnotationImportError(f'{where} line {number}: colour {rgb} is given to '
                                        f'both {colours[rgb]!r} and {fields[0]!r}')
        colours[rgb] = fields[0]
    return colours


def read_cvat_labelmap(path: PathLike) -> Dict[RGB, str]:
    """The labelmap of a CVAT export (zip or folder): {(r, g, b): label}, in file order."""
    return _labelmap(ExportFiles(Path(path)), path)


def _labelmap(files: ExportFiles, path: PathLike) -> Dict[RGB, str]:
    if CVAT_LABELMAP_FILE not in files.names:
        raise AnnotationImportError(
            f'{path}: no {CVAT_LABELMAP_FILE} at its top level; expected a CVAT "Segmentation '
            f'mask 1.1" export ({CVAT_LABELMAP_FILE}, {CVAT_CLASS_DIR}/<image>.png)')
    return parse_cvat_labelmap(files.read(CVAT_LABELMAP_FILE).decode('utf-8'),
                               f'{path}: {CVAT_LABELMAP_FILE}')


def cvat_images(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
                overlap: str = 'error') -> List[AnnotatedImage]:
    """The images of a CVAT "Segmentation mask 1.1" export (zip or folder), named by their
    mask's path under ``SegmentationClass/`` without ``.png``. ``overlap`` is taken for a
    uniform signature: a colour mask gives each pixel one label."""
    del overlap
    files = ExportFiles(Path(path))
    colours = _labelmap(files, path)
    labels = LabelNames(classes)
    prefix = CVAT_CLASS_DIR + '/'
    masks = sorted(n for n in files.names if n.startswith(prefix) and n.endswith(MASK_SUFFIX))
    images = []
    for name in masks:
        where = f'{path}: {name}'
        with NoPillowPixelLimit(), Image.open(BytesIO(files.read(name))) as header:
            size = header.size  # read from the header, the pixels are decoded when written
        images.append(AnnotatedImage(
            names=(name[len(prefix):-len(MASK_SUFFIX)],), size=size, where=where,
            decode=lambda name=name, where=where: _cvat_mask(files, name, where, colours,
                                                             labels)))
    return images


def _cvat_mask(files: ExportFiles, name: str, where: str, colours: Dict[RGB, str],
               labels: LabelNames) -> np.ndarray:
    """One colour mask -> class ids; a colour not in the labelmap is an error (it would be
    a label nobody named)."""
    with NoPillowPixelLimit(), Image.open(BytesIO(files.read(name))) as image:
        rgb = np.asarray(image.convert('RGB'))  # a scan's mask is as large as the scan
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) \
        | rgb[..., 2]
    found, inverse = np.unique(keys, return_inverse=True)
    lut = np.zeros(len(found), np.uint8)
    for k, key in enumerate(found.tolist()):
        colour = (key >> 16, (key >> 8) & 255, key & 255)
        if colour not in colours:
            pixels = int(np.count_nonzero(inverse == k))
            raise AnnotationImportError(
                f'{where}: {pixels} pixels have the colour {colour}, which '
                f'{CVAT_LABELMAP_FILE} gives no label (its colours: {colours})')
        lut[k] = labels.id_of(colours[colour], where)
    return lut[inverse.reshape(keys.shape)]


def read_cvat(path: PathLike, classes: Sequence[str] = BINARY_CLASSES,
              overlap: str = 'error') -> Iterator[Tuple[str, np.ndarray]]:
    """``(image name, H x W uint8 class ids)`` of a CVAT "Segmentation mask 1.1" export
    (zip or folder), at the masks' own sizes; ids index ``classes``. The name is the mask's
    path under ``SegmentationClass/`` without ``.png`` (``box_2/page``)."""
    return decoded(cvat_images(path, classes, overlap))
