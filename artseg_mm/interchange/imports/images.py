"""The annotated images: found under the images folder by the names annotations give them,
checked against the sizes the annotations state, and given sample ids.

Why it exists: an annotation tool names an image its own way (CVAT by the name without
suffix, COCO by a file name that may carry the tool's folders, Label Studio by a URL), and
a mask drawn on one image must never be laid on another. One rule maps names to files:

- The images are the files under ``--images`` with an image suffix (``IMAGE_SUFFIXES``),
  its subfolders included (hidden files and folders left out, symbolic links to folders
  not followed), each known by its path relative to the folder, '/' separated
  (``box_2/page.png``).
- An annotation's name is a path. The image is the file at that path under the folder;
  when there is none, the path's leading folders are dropped one at a time (folders of the
  tool's own: an absolute path, Label Studio's ``/data/upload/3/``), so ``scans/x.png``
  finds ``x.png``. At each step, a file of the same path without its image suffix stands in
  when it is the only one (``box_2/page`` or ``box_2/page.jpg`` annotated, ``box_2/page.png``
  at hand). A name never finds a file deeper in the folder than it says.
- The sample id in the data root is the image's relative path without its suffix
  (``box_2/page``), so ``img_dir/<split>/box_2/page.png`` mirrors the images folder, as
  ``ARTeFACTDataset`` reads it (recursively, the relative path as the id).
"""
import os
import posixpath
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from PIL import Image

from ...datasets.orientation import NoPillowPixelLimit
from .annotated import AnnotatedImage, PathLike, Size, listed
from .errors import AnnotationImportError, ImportUsageError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp')


class MatchedImage(NamedTuple):
    """An annotation paired with its image file: ``name`` is the file's path relative to
    the images folder, ``size`` its (width, height) as stored (checked against the
    annotation's)."""
    item: AnnotatedImage
    name: str
    path: Path
    size: Size


def list_images(folder: PathLike, exclude: Sequence[PathLike] = ()) -> Dict[str, Path]:
    """The image files under ``folder`` and its subfolders, by their '/' separated path
    relative to it, sorted. The ``exclude`` folders are not searched (the data root being
    written, when it lies inside the images folder, holds images that are not annotated)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportUsageError(f'--images {folder} is not a folder')
    excluded = {Path(path).resolve() for path in exclude}
    found = {}
    for root, dirs, files in os.walk(folder):  # symbolic links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith('.')
                         and not (excluded and Path(root, d).resolve() in excluded))
        for file in files:
            if file.startswith('.') or os.path.splitext(file)[1].lower() not in IMAGE_SUFFIXES:
                continue
            path = Path(root, file)
            if path.is_file():
                found[path.relative_to(folder).as_posix()] = path
    return dict(sorted(found.items()))


def without_image_suffix(name: str) -> str:
    """'box/x.jpg' -> 'box/x'; a name without an image suffix stays (CVAT names masks so)."""
    stem, suffix = posixpath.splitext(name)
    return stem if suffix.lower() in IMAGE_SUFFIXES else name


def name_tails(name: str) -> List[str]:
    """``name`` as a relative path, then with its leading folders dropped one at a time:
    '/data/a/x.png' -> ['data/a/x.png', 'a/x.png', 'x.png']."""
    parts = [p for p in name.replace('\\', '/').split('/') if p not in ('', '.')]
    return ['/'.join(parts[k:]) for k in range(len(parts))]


class ImageFolder:
    """The images under a folder (:func:`list_images`) and the rule that finds the one an
    annotation names (see the module's docstring)."""

    def __init__(self, folder: PathLike, exclude: Sequence[PathLike] = ()):
        self.folder = Path(folder)
        self.files = list_images(self.folder, exclude)
        self._by_stem: Dict[str, List[str]] = {}
        for name in self.files:
            self._by_stem.setdefault(without_image_suffix(name), []).append(name)

    def find(self, names: Sequence[str]) -> Optional[str]:
        """The relative path of the image an annotation names: for each of its ``names``
        in order, and for each of its tails (:func:`name_tails`), the file of that path,
        else the only file of that path without its image suffix. None when none is."""
        for name in names:
            for tail in name_tails(name):
                if tail in self.files:
                    return tail
                same = self._by_stem.get(without_image_suffix(tail), [])
                if len(same) == 1:
                    return same[0]
        return None


def match_images(annotated: List[AnnotatedImage], images: ImageFolder, source: PathLike,
                 skip_unannotated: bool) -> Tuple[List[MatchedImage], List[str]]:
    """Pair each annotation with its image file, its size checked; returns the pairs and
    the images left out for having no annotation (only with ``skip_unannotated``, else they
    are an error, as are annotations without an image, two annotations of one image and
    sizes that differ)."""
    pairs, missing, by_image = [], [], {}
    for item in annotated:
        name = images.find(item.names)
        if name is None:
            missing.append(f'{item.names[0]} ({item.where})')
            continue
        if name in by_image:
            raise AnnotationImportError(
                f'image {name} is annotated twice in {source}: {by_image[name]} and '
                f'{item.where}')
        by_image[name] = item.where
        pairs.append((item, name))
    if missing:
        raise AnnotationImportError(
            f'{len(missing)} annotated image(s) of {source} are not in {images.folder}: '
            f'{listed(missing)}')
    unannotated = sorted(set(images.files) - set(by_image))
    if unannotated and not skip_unannotated:
        raise AnnotationImportError(
            f'{len(unannotated)} image(s) in {images.folder} have no annotation in '
            f'{source}: {listed(unannotated)}; pass --skip-unannotated to leave them out')
    matched = [MatchedImage(item, name, images.files[name],
                            check_size(item, images.files[name])) for item, name in pairs]
    return matched, unannotated


def image_size(path: Path) -> Size:
    """An image file's (width, height) as stored, from its header."""
    with NoPillowPixelLimit(), Image.open(path) as header:  # scans are large by nature
        return header.size


def check_size(item: AnnotatedImage, path: Path) -> Size:
    """The image's size, checked against the one its annotation states: a mask drawn on
    another size of the image cannot be laid on it."""
    size = image_size(path)
    if item.size is not None and item.size != size:
        hint = (' (width and height swapped: the tool may have shown the image turned by '
                'its EXIF orientation, which the project does not apply)'
                if item.size == size[::-1] else '')
        raise AnnotationImportError(
            f'image {path} is {size[0]}x{size[1]} px but its annotation ({item.where}) is '
            f'{item.size[0]}x{item.size[1]} px{hint}')
    return size


def sample_ids(names: Sequence[str]) -> Dict[str, str]:
    """Sample id (relative path without suffix) -> image's relative path; two images of
    one id are refused, as they would be one file in the data root."""
    ids: Dict[str, str] = {}
    for name in names:
        sample_id = without_image_suffix(name)
        if sample_id in ids:
            raise AnnotationImportError(f'images {ids[sample_id]} and {name} would both be '
                                        f'sample {sample_id!r}; rename one')
        ids[sample_id] = name
    return ids
