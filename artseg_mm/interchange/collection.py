"""A folder of predicted masks exported as collections: one file per format for the whole
folder, as annotation tools import them.

Why it exists: ``tools/infer.py`` segments a whole folder, while CVAT, Label Studio and COCO
tools import one file per task; a file per image would mean one import per image. GIS and
IIIF viewers, on the other hand, open one image at a time, so GeoJSON and IIIF stay per
image. Layout under ``out_dir``::

    geojson/<name>.geojson     per image (QGIS, QuPath); the folders of ``name`` mirrored
    iiif/<name>.iiif.json      per image (IIIF viewers)
    annotations.coco.json      every image: image ids 1..N in the order added, annotation
                               ids 1..M over all images, the categories once
    annotations.cvat.zip       one CVAT "Segmentation mask 1.1" archive: one labelmap.txt,
                               SegmentationClass/<name>.png and SegmentationObject/<name>.png
                               per image, ImageSets/Segmentation/default.txt listing all
    tasks.labelstudio.json     one list of Label Studio tasks (brush predictions)
    labelstudio_config.xml     the labeling config those tasks match

Each format is written by :mod:`artseg_mm.interchange.exports`' writers, so a collection
says what the per-image exports say, and the importer
(:mod:`artseg_mm.interchange.imports`, ``tools/dataset_converters/from_annotations.py``)
reads the COCO, CVAT and Label Studio files back to the masks.

Names and images. ``name`` is the image's path relative to the folder of images, without
its suffix, '/' separated (``box_2/page``), as ``tools/infer.py`` names its outputs. It
names the per-image files and the CVAT members (CVAT matches masks to a task's images by
that name without suffix). ``image_path`` is what COCO's ``file_name`` and Label Studio's
``data.image`` carry: give the image's path relative to the folder the tools will find the
images in (``box_2/page.png``): COCO tools join it to their image folder, and
``from_annotations.py --images FOLDER`` finds ``FOLDER/box_2/page.png`` by it. For Label
Studio, serve that folder (e.g. as local storage) or rewrite ``data.image`` to the URL it
is served at: the importer drops a URL's leading folders until the path names a file under
``--images``, which also makes an absolute path work, at the cost of tying the files to one
machine. Without ``image_path`` both carry ``name`` (no suffix), which the importer matches
to the one image of that name with any image suffix.

Memory is bounded per image: each image's documents are computed (all of them before any
is written, so an image refused leaves no trace), then streamed to disk: COCO annotations
and Label Studio tasks into their JSON files, PNGs into the zip. Only the COCO image
records and the names (a few hundred bytes an image) are kept. The collection files are
written as ``<file>.partial`` and moved into place by :meth:`CollectionExport.finish`, so
a reader never sees half a collection; an interrupted run leaves the ``.partial`` files.
"""
import json
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .exports import (CVAT_LABELMAP_FILE, CVAT_SUBSET_LIST, DEFAULT_MODEL_VERSION,
                      FILE_SUFFIXES, FORMATS, check_cvat_classes, coco_categories,
                      cvat_image_members, cvat_labelmap, labelstudio_config, to_coco,
                      to_geojson, to_iiif, to_labelstudio, write_json)
from .polygons import check_classes, check_mask, class_colours

COLLECTION_FILES = {
    'coco': 'annotations.coco.json',
    'cvat': 'annotations.cvat.zip',
    'labelstudio': 'tasks.labelstudio.json',
}
PER_IMAGE_FOLDERS = {'geojson': 'geojson', 'iiif': 'iiif'}
LABELSTUDIO_CONFIG_FILE = 'labelstudio_config.xml'
# finish()'s key for the labeling config, beside the 'labelstudio' tasks
LABELSTUDIO_CONFIG_KEY = 'labelstudio_config'
PARTIAL_SUFFIX = '.partial'
OPEN, FINISHED, ABORTED = 'open', 'finished', 'aborted'
# characters a name cannot hold: a folder separator of another system, line breaks (CVAT's
# image list is one name a line), NUL (no file system takes it)
FORBIDDEN_NAME_CHARACTERS = ('\\', '\n', '\r', '\0')


def check_formats(formats) -> Tuple[str, ...]:
    """The asked formats, each once in the order asked; an unknown or missing one is
    refused with the allowed names, before anything is written."""
    if isinstance(formats, str):  # one format named alone, not its letters
        formats = [formats]
    formats = tuple(dict.fromkeys(formats))
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f'unknown export formats {unknown}; allowed: {list(FORMATS)}')
    if not formats:
        raise ValueError(f'no export format asked; allowed: {list(FORMATS)}')
    return formats


def check_name(name) -> str:
    """``name`` (an image's relative path without suffix, '/' separated) checked: it
    becomes file paths under ``out_dir`` and zip members, so it may not leave the folder
    (no absolute path, no '..'), nor hold empty or '.' parts, backslashes or line breaks."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'an image name is a non-empty string, got {name!r}')
    parts = name.split('/')
    if any(part in ('', '.', '..') for part in parts) \
            or any(char in name for char in FORBIDDEN_NAME_CHARACTERS):
        raise ValueError(f'image name {name!r}: a name is a relative path, "/" separated '
                         '(e.g. box_2/page), without empty, "." or ".." parts, backslashes '
                         'or line breaks')
    return name


def image_reference(image_path, name: str) -> str:
    """What COCO's ``file_name`` and Label Studio's ``data.image`` carry: ``image_path``
    with '/' separators, else ``name``."""
    if image_path is None:
        return name
    reference = os.fspath(image_path).replace(os.sep, '/')
    if not reference:
        raise ValueError(f'image {name!r}: image_path is empty; give the image\'s path '
                         'relative to the images folder, or None')
    return reference


class _JsonStream:
    """A JSON file written as it grows: a head, items appended with commas between them,
    then a tail. Written to ``<path>.partial``, moved into place when closed."""

    def __init__(self, path: Path, head: str):
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._stream = open(self.partial, 'w', encoding='utf-8')
        self._stream.write(head)
        self._items = 0

    def append(self, item) -> None:
        if self._items:
            self._stream.write(',')
        json.dump(item, self._stream, ensure_ascii=False, separators=(',', ':'))
        self._items += 1

    def close(self, tail: str) -> None:
        self._stream.write(tail)
        self._stream.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Close and remove the partial file: the collection is not written."""
        self._stream.close()
        self.partial.unlink(missing_ok=True)


class _CvatArchive:
    """The collection's CVAT archive, written to ``<path>.partial`` as images come (one
    labelmap, two PNGs an image) and moved into place when closed with the image list."""

    def __init__(self, path: Path, labelmap: str):
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._archive = zipfile.ZipFile(self.partial, 'w', compression=zipfile.ZIP_DEFLATED)
        self._archive.writestr(CVAT_LABELMAP_FILE, labelmap)
        self._names: List[str] = []

    def add(self, name: str, members: List[Tuple[str, bytes]]) -> None:
        for member, data in members:
            self._archive.writestr(member, data)
        self._names.append(name)

    def close(self) -> None:
        self._archive.writestr(CVAT_SUBSET_LIST, ''.join(f'{n}\n' for n in self._names))
        self._archive.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Close and remove the partial archive: the collection is not written."""
        self._archive.close()
        self.partial.unlink(missing_ok=True)


class CollectionExport:
    """The masks of a folder of images, exported image by image into collections (see the
    module's docstring for the layout, the names and ``image_path``).

    Use::

        export = CollectionExport(out_dir, classes, palette, ['coco', 'cvat'])
        for name, mask in ...:
            export.add(mask, name, image_path=f'{name}.png')
        export.finish()

    or as a context manager, which finishes on leaving and aborts (removes the partial
    collection files) when the block raises. ``finish`` is idempotent: a second call
    writes nothing and returns the same files; :meth:`add` after it is an error, and so
    is ``finish`` after :meth:`abort`.

    Args:
        out_dir: the folder of the collection (created; files of the same names in it are
            replaced).
        classes: the model's class names (id 0 the background, never exported).
        palette: the model's colours, used where they keep classes apart (CVAT, QuPath,
            Label Studio), or None.
        formats: some of :data:`~artseg_mm.interchange.exports.FORMATS`; an unknown one is
            a ValueError listing the allowed.
        model_version: the model's name, in COCO's info, Label Studio's predictions and the
            IIIF generator.
        iiif_canvas: the IIIF canvas id template, ``{name}`` filled in (see
            :func:`~artseg_mm.interchange.exports.to_iiif`).
    """

    def __init__(self, out_dir, classes: Sequence[str], palette, formats,
                 model_version: str = DEFAULT_MODEL_VERSION,
                 iiif_canvas: Optional[str] = None):
        self.formats = check_formats(formats)
        self.classes = (check_cvat_classes(classes) if 'cvat' in self.formats
                        else check_classes(classes))
        self.palette = palette
        self.colours = class_colours(self.classes, palette)
        self.model_version = model_version
        self.iiif_canvas = iiif_canvas
        self.out_dir = Path(out_dir)
        self._names: set = set()
        self._coco_images: List[dict] = []
        self._annotations = 0
        self._state = OPEN
        self._finished: Dict[str, str] = {}
        self._coco: Optional[_JsonStream] = None
        self._cvat: Optional[_CvatArchive] = None
        self._labelstudio: Optional[_JsonStream] = None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for fmt, folder in PER_IMAGE_FOLDERS.items():
            if fmt in self.formats:
                (self.out_dir / folder).mkdir(exist_ok=True)
        try:
            self._open_collections()
        except BaseException:
            self.abort()  # the files opened so far; the error is re-raised
            raise

    def _open_collections(self) -> None:
        """Start the collection files of the asked formats."""
        if 'coco' in self.formats:
            self._coco = _JsonStream(self.out_dir / COLLECTION_FILES['coco'], _coco_head(
                self.classes, self.model_version))
        if 'cvat' in self.formats:
            self._cvat = _CvatArchive(self.out_dir / COLLECTION_FILES['cvat'],
                                      cvat_labelmap(self.classes, self.colours))
        if 'labelstudio' in self.formats:
            self._labelstudio = _JsonStream(self.out_dir / COLLECTION_FILES['labelstudio'],
                                            '[')

    def add(self, mask, name: str, image_path=None, px_per_mm=None,
            score: Optional[float] = None) -> Dict[str, str]:
        """Add one image's mask (H x W class ids; 255: not segmented, never exported).

        Returns format -> the file, relative to ``out_dir``, the image went into: its own
        GeoJSON and IIIF files (written now), the collection files (complete only after
        :meth:`finish`). ``px_per_mm``: (x, y) pixels per mm, for GeoJSON's areas in mm²;
        ``score``: the model's mean confidence, in Label Studio's prediction. A name added
        before is refused: its files would be overwritten and listed twice."""
        if self._state != OPEN:
            raise RuntimeError(f'the collection in {self.out_dir} is {self._state}; image '
                               f'{name!r} cannot be added')
        name = check_name(name)
        if name in self._names:
            raise ValueError(f'image name {name!r} is in the collection already: two images '
                             'of one name would overwrite each other\'s files')
        array = check_mask(mask, self.classes)
        reference = image_reference(image_path, name)
        documents = self._documents(array, name, reference, px_per_mm, score)
        written = {}
        for fmt in self.formats:
            if fmt in PER_IMAGE_FOLDERS:
                relative = f'{PER_IMAGE_FOLDERS[fmt]}/{name}{FILE_SUFFIXES[fmt]}'
                write_json(documents[fmt], self.out_dir / relative)
            else:
                self._append(fmt, documents[fmt], name, reference, array.shape)
                relative = COLLECTION_FILES[fmt]
            written[fmt] = relative
        self._names.add(name)
        return written

    def _documents(self, array, name: str, reference: str, px_per_mm, score) -> dict:
        """Every asked format's document of one image, computed before any is written."""
        documents = {}
        if 'geojson' in self.formats:
            documents['geojson'] = to_geojson(array, self.classes, self.palette, name=name,
                                              px_per_mm=px_per_mm)
        if 'iiif' in self.formats:
            documents['iiif'] = to_iiif(array, self.classes, name=name,
                                        canvas=self.iiif_canvas,
                                        model_version=self.model_version)
        if 'coco' in self.formats:
            documents['coco'] = to_coco(array, self.classes, name=name,
                                        model_version=self.model_version)['annotations']
        if 'labelstudio' in self.formats:
            (documents['labelstudio'],) = to_labelstudio(
                array, self.classes, name=name, image_path=reference,
                model_version=self.model_version, score=score)
        if 'cvat' in self.formats:
            documents['cvat'] = cvat_image_members(array, self.colours, name)
        return documents

    def _append(self, fmt: str, document, name: str, reference: str, shape) -> None:
        """Stream one image's document into its collection file."""
        if fmt == 'coco':
            image_id = len(self._coco_images) + 1
            for annotation in document:
                self._annotations += 1
                annotation.update(id=self._annotations, image_id=image_id)
                self._coco.append(annotation)
            self._coco_images.append({'id': image_id, 'file_name': reference,
                                      'width': int(shape[1]), 'height': int(shape[0])})
        elif fmt == 'cvat':
            self._cvat.add(name, document)
        elif fmt == 'labelstudio':
            self._labelstudio.append(document)
        else:
            raise ValueError(f'{fmt!r} is not a collection format')

    def finish(self) -> Dict[str, str]:
        """Complete the collection files and return format -> the collection file (or, for
        GeoJSON and IIIF, the folder of per-image files) relative to ``out_dir``; Label
        Studio's labeling config is under ``'labelstudio_config'``. A second call writes
        nothing and returns the same; after :meth:`abort` it is an error."""
        if self._state == FINISHED:
            return dict(self._finished)
        if self._state == ABORTED:
            raise RuntimeError(f'the collection in {self.out_dir} was aborted: its files '
                               'were not written')
        try:
            self._finished = self._close_collections()
        except BaseException:
            self.abort()  # no half-written collection is left; the error is re-raised
            raise
        self._state = FINISHED
        return dict(self._finished)

    def _close_collections(self) -> Dict[str, str]:
        files = {}
        for fmt in self.formats:
            if fmt in PER_IMAGE_FOLDERS:
                files[fmt] = PER_IMAGE_FOLDERS[fmt]
                continue
            if fmt == 'coco':
                self._coco.close('],"images":' + _json(self._coco_images) + '}')
            elif fmt == 'cvat':
                self._cvat.close()
            elif fmt == 'labelstudio':
                self._labelstudio.close(']')
                _write_text(self.out_dir / LABELSTUDIO_CONFIG_FILE,
                            labelstudio_config(self.classes, self.palette))
            files[fmt] = COLLECTION_FILES[fmt]
            if fmt == 'labelstudio':
                files[LABELSTUDIO_CONFIG_KEY] = LABELSTUDIO_CONFIG_FILE
        self._coco = self._cvat = self._labelstudio = None
        return files

    def abort(self) -> None:
        """Stop without writing the collection files (their partial files are removed);
        the per-image files written so far stay. Further :meth:`add` calls are refused."""
        for writer in (self._coco, self._cvat, self._labelstudio):
            if writer is not None:
                writer.abort()
        self._coco = self._cvat = self._labelstudio = None
        if self._state == OPEN:
            self._state = ABORTED

    def __enter__(self) -> 'CollectionExport':
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
        return False


def _coco_head(classes: List[str], model_version: str) -> str:
    """The start of the collection's COCO file, up to its annotations list: the info and
    the categories (every class but the background, its id the class id, as
    :func:`~artseg_mm.interchange.exports.to_coco` writes them)."""
    categories = coco_categories(classes)
    info = {'description': 'damage predicted for a collection of images',
            'version': model_version}
    return '{"info":' + _json(info) + ',"categories":' + _json(categories) + ',"annotations":['


def _json(document) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(',', ':'))


def _write_text(path: Path, text: str) -> None:
    """Write ``path`` through ``<path>.partial``, so it is whole or absent."""
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    partial.write_text(text, encoding='utf-8')
    os.replace(partial, path)
