"""The import as a whole: an annotation export and its images in, masks or a data root out.

Why it exists: every format goes through the same checks before anything is written (the
classes, the labels, each annotation paired with exactly one image of the stated size), so
:func:`import_annotations` (the command line's work) and :func:`read_annotations` (the same
reading without writing a data root, for checking an export against the masks it came from)
share one path.
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .annotated import OVERLAP_RULES, AnnotatedImage, MaskCanvas, PathLike
from .classes import disk_ids, resolve_classes
from .coco import coco_images
from .cvat import cvat_images
from .data_root_writer import (Sample, check_output, output_folders, source_record,
                               write_data_root)
from .errors import AnnotationImportError, ImportUsageError
from .images import ImageFolder, MatchedImage, match_images, sample_ids
from .labelstudio import label_studio_images
from .splits import DEFAULT_VAL_FRACTION, check_val_fraction, split_samples

FORMATS = ('cvat', 'coco', 'label-studio')
READERS: Dict[str, Callable[..., List[AnnotatedImage]]] = {
    'cvat': cvat_images, 'coco': coco_images, 'label-studio': label_studio_images}

ClassSpec = Optional[Union[str, Sequence[str]]]


def _check_choices(fmt: str, overlap: str) -> None:
    if fmt not in FORMATS:
        raise ImportUsageError(f'format must be one of {FORMATS}, got {fmt!r}')
    if overlap not in OVERLAP_RULES:
        raise ImportUsageError(f'--overlap must be one of {OVERLAP_RULES}, got {overlap!r}')


def _matched(fmt: str, annotations: Path, images: ImageFolder, classes: List[str],
             overlap: str, use_predictions: bool, skip_unannotated: bool
             ) -> Tuple[List[MatchedImage], List[str]]:
    """The export's annotated images, each paired with its image file (sizes checked), and
    the images left out for having no annotation."""
    options = dict(use_predictions=use_predictions) if fmt == 'label-studio' else {}
    annotated = READERS[fmt](annotations, classes, overlap, **options)
    matched, left_out = match_images(annotated, images, annotations, skip_unannotated)
    if not matched:
        raise AnnotationImportError(f'{annotations} annotates no image of {images.folder}')
    return matched, left_out


def decoded_mask(image: MatchedImage, classes: Sequence[str], overlap: str) -> np.ndarray:
    """An annotation's mask, at its image's size; a Label Studio task without regions is
    all Clean at the image file's size."""
    item, size = image.item, image.size
    if item.size is None:
        return MaskCanvas(item.names[0], size, classes, overlap).mask
    mask = item.decode()
    if mask.shape != (size[1], size[0]):  # the decoders keep to the stated size
        raise AnnotationImportError(f'{item.where}: decoded {mask.shape[1]}x{mask.shape[0]} '
                                    f'px, the image is {size[0]}x{size[1]} px')
    return mask


def read_annotations(fmt: str, annotations: PathLike, images: PathLike,
                     classes: ClassSpec = None, *, overlap: str = 'error',
                     use_predictions: bool = False, skip_unannotated: bool = False
                     ) -> Iterator[Tuple[str, np.ndarray]]:
    """``(image path relative to images, H x W uint8 class ids)`` of every annotated image
    of an export, checked as :func:`import_annotations` checks them (labels, one image per
    annotation, sizes, overlaps), decoded one at a time; nothing is written. Arguments as
    for :func:`import_annotations`."""
    _check_choices(fmt, overlap)
    annotations = Path(annotations)
    if not annotations.exists():
        raise ImportUsageError(f'annotations {annotations} do not exist')
    class_names = resolve_classes(classes)
    matched, _ = _matched(fmt, annotations, ImageFolder(images), class_names, overlap,
                          use_predictions, skip_unannotated)
    for image in matched:
        yield image.name, decoded_mask(image, class_names, overlap)


def import_annotations(fmt: str, annotations: PathLike, images: PathLike, out: PathLike, *,
                       classes: ClassSpec = None,
                       val_fraction: float = DEFAULT_VAL_FRACTION,
                       val: Optional[Sequence[str]] = None, seed: int = 0,
                       overlap: str = 'error', skip_unannotated: bool = False,
                       use_predictions: bool = False, force: bool = False,
                       progress: bool = True) -> dict:
    """Write the data root ``out`` from an annotation export; returns its summary (also
    ``summary.json``).

    Args:
        fmt: one of FORMATS ('cvat', 'coco', 'label-studio').
        annotations: the export (CVAT: zip or folder; COCO, Label Studio: JSON).
        images: the folder of the annotated images, subfolders included; an annotation's
            image name is a path relative to it (see
            :mod:`artseg_mm.interchange.imports.images`).
        out: the data root to write (refused when non-empty unless ``force``, and then
            replaced only when this importer wrote it).
        classes: the model's classes (see :func:`resolve_classes`); default binary.
        val_fraction, val, seed: the split (see :func:`split_samples`); ``val`` names
            images by sample id or path relative to ``images``.
        overlap: 'error' or 'later' (see :class:`MaskCanvas`).
        skip_unannotated: leave out images without annotation (listed) instead of failing.
        use_predictions: Label Studio: a task's prediction where it has no annotation.
        progress: a tqdm bar over the images.
    """
    _check_choices(fmt, overlap)
    if val is None:  # before any work
        check_val_fraction(val_fraction)
    annotations, images, out = Path(annotations), Path(images), Path(out)
    if not annotations.exists():
        raise ImportUsageError(f'annotations {annotations} do not exist')
    class_names = resolve_classes(classes)
    label_mode, to_disk = disk_ids(class_names)
    folder = ImageFolder(images, exclude=output_folders(out))
    check_output(out, force, [annotations, images])

    matched, left_out = _matched(fmt, annotations, folder, class_names, overlap,
                                 use_predictions, skip_unannotated)
    ids = sample_ids([image.name for image in matched])
    splits = split_samples(list(ids), seed, val_fraction, val,
                           names={name: i for i, name in ids.items()})
    by_name = {image.name: image for image in matched}
    samples = [Sample(sample_id, splits[sample_id], by_name[name].path, by_name[name].size,
                      lambda image=by_name[name]: decoded_mask(image, class_names, overlap))
               for sample_id, name in ids.items()]
    meta = dict(
        seed=seed, source=source_record(fmt, annotations), images=str(images),
        model_classes=class_names,
        class_ids_on_disk={c: int(i) for c, i in zip(class_names, to_disk)},
        image_files={i: ids[i] for i in sorted(ids)},
        left_out_unannotated=left_out,
        args=dict(format=fmt, annotations=str(annotations), images=str(images),
                  out=str(out), classes=classes if classes is None or isinstance(
                      classes, str) else list(classes),
                  val_fraction=None if val is not None else val_fraction,
                  val=None if val is None else list(val), seed=seed, overlap=overlap,
                  skip_unannotated=skip_unannotated, use_predictions=use_predictions))
    return write_data_root(out, samples, label_mode, to_disk, fmt, class_names, left_out,
                           meta, progress)
