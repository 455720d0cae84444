"""The data root written from imported masks, in the layout ``ARTeFACTDataset`` reads.

Why it exists: imported corrections must train like converted ARTeFACT data, so they are
written through the layout's own writers (``artseg_mm.datasets.layout``: split folders,
sidecars, ``meta.json``, written into ``<out>.partial`` and moved into place only when
complete) with the class statistics of ``artseg_mm.data_prep.class_stats``. An output is
replaced only when this importer wrote it, so a typo in ``--out`` cannot delete a folder of
the user's.

The image is used as stored, as everywhere in the project (``artseg_mm.datasets.orientation``):
a PNG is copied as it is, another format decoded unchanged and written as PNG. A sample id
with folders (``box_2/page``) is written in the same folders under each split folder.
"""
import shutil
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ...data_prep.class_stats import (class_pixel_summary, class_weight_files, histogram,
                                      weight_counts)
from ...datasets import layout
from ...datasets.orientation import warn_if_file_oriented
from .annotated import Size
from .errors import AnnotationImportError, ImportUsageError
from .splits import IMPORT_SPLITS

IMPORTER_NAME = 'artseg_mm.interchange.imports'  # meta.json's 'converter': --force checks it
IMPORTER_VERSION = '1.1.0'


class Sample(NamedTuple):
    """One image to write: its id and split, its file, its size and how to paint its mask
    of the model's class ids (decoded only when written)."""
    sample_id: str
    split: str
    image: Path
    size: Size
    mask: Callable[[], np.ndarray]


def check_output(out: Path, force: bool, sources: Sequence[Path]) -> None:
    """Refuse an output that would take the working folder or a source with it, and let
    ``force`` replace only a data root this importer wrote (its ``meta.json`` says so), as
    the ARTeFACT converter does."""
    out_abs = out.resolve()
    for what, path in [('the current folder', Path.cwd())] + [('a source', s) for s in sources]:
        path = path.resolve()
        if out_abs == path or out_abs in path.parents:
            raise ImportUsageError(f'--out {out} is {what} ({path}) or a folder above it: the '
                                   'output folder is replaced as a whole; give one of its own')
    layout.check_replaceable(out, force, IMPORTER_NAME, 'a data root this importer',
                             ImportUsageError)


def output_folders(out: Path) -> List[Path]:
    """The folders writing ``out`` uses: itself, and where it is written and where the
    previous one waits while replaced (``layout.written_atomically``)."""
    return [out] + [out.parent / (out.name + suffix)
                    for suffix in (layout.PARTIAL_SUFFIX, layout.REPLACED_SUFFIX)]


def source_record(fmt: str, path: Path) -> dict:
    """What meta.json says of the annotation source: format, path, and for a file its
    size and sha256, so the data root says which export it was made from."""
    from ...utils.hashing import sha256_of
    record = dict(format=fmt, file=str(path))
    if path.is_file():
        record.update(bytes=path.stat().st_size, sha256=sha256_of(path))
    return record


def write_data_root(out: Path, samples: Sequence[Sample], label_mode: str,
                    to_disk: np.ndarray, fmt: str, model_classes: List[str],
                    left_out: List[str], meta: dict, progress: bool = True) -> dict:
    """Write the data root ``out`` (atomically) and return its summary.

    ``to_disk`` maps the model's class ids to the ids of ``label_mode`` on disk; ``meta``
    is added to ``meta.json`` after the importer's name and version."""
    with layout.written_atomically(out, 'this importer', ImportUsageError) as tmp:
        layout.make_split_folders(tmp, IMPORT_SPLITS)
        pixels = {s: np.zeros(256, np.int64) for s in IMPORT_SPLITS}
        rows: Dict[str, List[dict]] = {s: [] for s in IMPORT_SPLITS}
        for sample in tqdm(sorted(samples, key=lambda s: s.sample_id), desc='import',
                           unit='img', disable=not progress):
            on_disk = to_disk[sample.mask()]
            write_image(sample.image, tmp / layout.sample_file(
                layout.IMG_DIR, sample.split, sample.sample_id))
            write_mask(on_disk, tmp / layout.sample_file(
                layout.ANN_DIR, sample.split, sample.sample_id))
            pixels[sample.split] += histogram(on_disk)
            rows[sample.split].append(dict(
                id=sample.sample_id, material='', content='', type='',
                source_width=sample.size[0], source_height=sample.size[1], transform='none',
                scale=repr(1.0), tile_x='', tile_y='', parent_id=sample.sample_id))
        summary = write_records(tmp, rows, pixels, label_mode, left_out, fmt, model_classes)
        layout.write_json(tmp / layout.META_JSON, layout.meta_record(
            label_mode, converter=IMPORTER_NAME, converter_version=IMPORTER_VERSION, **meta))
    return summary


def write_image(src: Path, dst: Path) -> None:
    """A PNG is copied as it is (byte for byte); another format is decoded unchanged (bit
    depth, alpha and pixels as stored) and written as PNG, the data root's format."""
    warn_if_file_oriented(str(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() == layout.IMAGE_SUFFIX:
        shutil.copyfile(src, dst)
        return
    pixels = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise AnnotationImportError(f'image {src} cannot be decoded')
    if not cv2.imwrite(str(dst), pixels):
        raise AnnotationImportError(f'could not write {dst}')


def write_mask(mask: np.ndarray, dst: Path) -> None:
    """A single-channel PNG of class ids on disk."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(dst), mask):
        raise AnnotationImportError(f'could not write {dst}')


def write_records(tmp: Path, rows: Dict[str, List[dict]], pixels: Dict[str, np.ndarray],
                  label_mode: str, left_out: List[str], fmt: str,
                  model_classes: List[str]) -> dict:
    """The sidecars, the class-weight files (as the converter computes them: train pixels,
    else every split's) and ``summary.json``; returns the summary."""
    for split in IMPORT_SPLITS:
        layout.write_sidecar(tmp, split, rows[split])
    disk_classes = layout.CLASSES_ON_DISK[label_mode]
    counts, computed_on = weight_counts(pixels, len(disk_classes))
    for name, record in class_weight_files(counts, label_mode, computed_on).items():
        layout.write_json(tmp / name, record)
    class_pixels, class_freq = {}, {}
    for split in IMPORT_SPLITS:
        class_pixels[split], class_freq[split] = class_pixel_summary(pixels[split],
                                                                     disk_classes)
    summary = dict(label_mode_on_disk=label_mode, source_format=fmt,
                   model_classes=model_classes,
                   images_per_split={s: len(rows[s]) for s in IMPORT_SPLITS},
                   files_per_split={s: len(rows[s]) for s in IMPORT_SPLITS},
                   class_pixels=class_pixels, class_frequency=class_freq,
                   left_out_unannotated=left_out)
    layout.write_json(tmp / layout.SUMMARY_JSON, summary)
    return summary
