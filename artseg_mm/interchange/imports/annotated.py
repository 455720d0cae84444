"""What a format reader hands over, and how one image's mask is painted from its regions.

Why it exists: the CVAT, COCO and Label Studio readers differ in how they store regions but
must agree on everything else: an image's mask starts Clean, regions are painted in the
order the file lists them, and pixels two different classes claim are an error unless the
user lets the later region win. Each reader returns :class:`AnnotatedImage` records whose
masks are decoded only when asked, so a large export is never in memory at once.
"""
import json
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .classes import CLEAN
from .errors import AnnotationImportError

OVERLAP_RULES = ('error', 'later')

PathLike = Union[str, Path]
Size = Tuple[int, int]  # (width, height), as the tools state it


class AnnotatedImage(NamedTuple):
    """One image's annotation as a reader found it: the names it may go by (tried in
    order; each a path, matched against the images folder by
    :meth:`~artseg_mm.interchange.imports.images.ImageFolder.find`), its size where the file
    states it, where in the file it is (for messages), and how to paint its mask (decoded
    only when written, so a large export is never in memory at once)."""
    names: Tuple[str, ...]
    size: Optional[Size]
    where: str
    decode: Callable[[], np.ndarray]


class MaskCanvas:
    """One image's mask, painted region by region in the order the file lists them.

    Every pixel starts Clean; a region sets its class. Pixels two different classes claim
    are an error (``overlap='error'``: a correction that says both cannot be trained on
    silently), or go to the region painted later (``overlap='later'``).
    """

    def __init__(self, image: str, size: Size, classes: Sequence[str], overlap: str):
        width, height = size
        self.image, self.classes, self.overlap = image, list(classes), overlap
        self.mask = np.full((height, width), self.classes.index(CLEAN), np.uint8)
        self._claimed = np.zeros((height, width), bool)

    def paint(self, region: np.ndarray, class_id: int, where: str) -> None:
        """Give ``region`` (bool H x W) the class ``class_id``."""
        if region.shape != self.mask.shape:
            raise AnnotationImportError(
                f'{where}: the region is {region.shape[1]}x{region.shape[0]} px, the image '
                f'{self.image} {self.mask.shape[1]}x{self.mask.shape[0]} px')
        if self.overlap == 'error':
            clash = region & self._claimed & (self.mask != class_id)
            if clash.any():
                other, pixels = Counter(self.mask[clash].tolist()).most_common(1)[0]
                raise AnnotationImportError(
                    f'image {self.image}: {pixels} pixels are claimed by both '
                    f'{self.classes[other]!r} and {self.classes[class_id]!r} ({where}). '
                    'Correct the overlap in the annotation tool, or pass --overlap later '
                    '(overlap="later") to let the annotation listed later win')
        self.mask[region] = class_id
        self._claimed |= region


def load_json(path: PathLike):
    """A JSON file, with its name in the error when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding='utf-8'))
    except json.JSONDecodeError as error:
        raise AnnotationImportError(f'{path} is not valid JSON ({error})') from error


def decoded(images: Iterable[AnnotatedImage]) -> Iterator[Tuple[str, np.ndarray]]:
    """``(image name, mask)`` of each annotated image, decoded one at a time: the form the
    format readers' ``read_*`` functions return."""
    for image in images:
        yield image.names[0], image.decode()


def listed(names: Sequence[str], shown: int = 10) -> str:
    """The first names of a list, for a one-line message."""
    more = f' ... ({len(names) - shown} more)' if len(names) > shown else ''
    return ', '.join(names[:shown]) + more
