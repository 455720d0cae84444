"""Writing the converter's rows: each source row's image and mask, resized or tiled, into
the split folders, with its sidecar rows and its pixels counted once.

Rows are streamed one at a time (:func:`~.parquet_source.shard_records`); a bad row stops the
conversion, or with ``skip_bad`` is skipped and listed in the summary.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..datasets import layout
from ..datasets.artefact_classes import FULL_TO_BINARY, IGNORE_INDEX
from .class_stats import class_pixel_summary, class_weight_files, histogram, weight_counts
from .errors import BadRowError, ConversionError
from .parquet_source import SourceRow, UnreadableRowGroup, shard_records
from .resize_and_tile import iter_tiles, resize_long_side
from .row_decoding import check_mask, decode_image, decode_mask, struct_bytes

SPLITS = layout.SPLITS


def write_rows(rows: Sequence[SourceRow], splits: Dict[str, str], shards: Sequence[Path],
               root: Path, tmp: Path, *, label_mode: str, resize_long_side: int,
               tile: Optional[int], tile_overlap: int, skip_bad: bool, max_pixels: int,
               progress: bool) -> dict:
    """Write every row with a split into the data root being made at ``tmp``, then its
    sidecars and class-weight files; returns the summary (``summary.json``'s content)."""
    by_key = {(r.shard, r.row_index): r for r in rows}
    meta_rows: Dict[str, List[dict]] = {s: [] for s in SPLITS}
    pixels = {s: np.zeros(256, dtype=np.int64) for s in SPLITS}
    images_per_split = {s: 0 for s in SPLITS}
    per_material: Dict[str, Dict[str, int]] = {}
    skipped: List[dict] = []
    binary_lut = None
    if label_mode == 'binary':
        binary_lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for full_id, binary_id in FULL_TO_BINARY.items():
            binary_lut[full_id] = binary_id

    bar = tqdm(total=len(splits), desc='ARTeFACT', unit='img', disable=not progress)
    for shard, row_group, index, record in shard_records(shards, skip_bad):
        shard_name = shard.relative_to(root).as_posix()
        row = by_key[(shard_name, index)]
        split = splits.get(row.out_id)
        if split is None:
            continue
        if isinstance(record, UnreadableRowGroup):
            skipped.append(dict(id=row.source_id, shard=shard_name, split=split,
                                reason=f'row group {row_group} cannot be read: '
                                       f'{record.reason}'))
            bar.write(f'skipped: {row.source_id!r} ({shard_name} row group {row_group} '
                      f'cannot be read: {record.reason})')
            bar.update(1)
            continue
        try:
            image = decode_image(struct_bytes(record['image'], 'image', row), row, max_pixels)
            mask = decode_mask(
                struct_bytes(record['annotation'], 'annotation', row), row, max_pixels)
            check_mask(mask, image, row)
        except BadRowError as err:
            if not skip_bad:
                raise
            skipped.append(dict(id=err.row_id, shard=err.shard, reason=err.reason,
                                split=split))
            bar.write(f'skipped: {err}')
            bar.update(1)
            continue
        _write_row(row, split, image, mask, tmp, meta_rows[split], pixels[split],
                   binary_lut, resize_long_side, tile, tile_overlap)
        del image, mask
        images_per_split[split] += 1
        material = row.material or 'unknown'
        per_material.setdefault(material, {s: 0 for s in SPLITS})
        per_material[material][split] += 1
        bar.update(1)
    bar.close()

    for split in SPLITS:
        layout.write_sidecar(tmp, split, sorted(meta_rows[split], key=lambda r: r['id']))
    classes = layout.CLASSES_ON_DISK[label_mode]
    counts, computed_on = weight_counts(pixels, len(classes))
    for name, record in class_weight_files(counts, label_mode, computed_on).items():
        layout.write_json(tmp / name, record)
    class_pixels, class_freq = {}, {}
    for split in SPLITS:
        class_pixels[split], class_freq[split] = class_pixel_summary(pixels[split], classes)
    return dict(
        label_mode_on_disk=label_mode,
        images_per_split=images_per_split,
        files_per_split={s: len(meta_rows[s]) for s in SPLITS},
        images_per_material=dict(sorted(per_material.items())),
        class_pixels=class_pixels,
        class_frequency=class_freq,
        skipped=skipped,
    )


def _write_row(row: SourceRow, split: str, image: np.ndarray, mask: np.ndarray, tmp: Path,
               meta_rows: List[dict], pixels: np.ndarray, binary_lut: Optional[np.ndarray],
               long_side: int, tile: Optional[int], tile_overlap: int) -> None:
    """Write one row's files (one, or one per tile), add its sidecar rows and its pixels;
    ``binary_lut`` (binary masks on disk) maps the full ids after resizing."""
    src_h, src_w = mask.shape
    image, mask, scale = resize_long_side(image, mask, long_side)
    if binary_lut is not None:
        mask = binary_lut[mask]
    transform = 'resize' if scale != 1.0 else 'none'
    if tile:
        transform = 'resize+tile' if scale != 1.0 else 'tile'
        pieces = ((f'{row.out_id}_x{tx}_y{ty}', tx, ty, img, msk)
                  for tx, ty, img, msk in iter_tiles(image, mask, tile, tile_overlap))
    else:
        pieces = [(row.out_id, '', '', image, mask)]
    pixels += histogram(mask)  # each source pixel once, however the tiles overlap
    for out_id, tx, ty, img, msk in pieces:
        _write_png(tmp / layout.sample_file(layout.IMG_DIR, split, out_id), img)
        _write_png(tmp / layout.sample_file(layout.ANN_DIR, split, out_id), msk)
        meta_rows.append(dict(
            id=out_id, material=row.material or '', content=row.content or '',
            type=row.type or '', source_width=src_w, source_height=src_h,
            transform=transform, scale=repr(float(scale)), tile_x=tx,
            tile_y=ty, parent_id=row.out_id))


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise ConversionError(f'could not write {path}')
