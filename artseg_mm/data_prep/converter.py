"""Convert the published ARTeFACT release into a data root that ARTeFACTDataset reads.

The driver: check the output folder, read the source index (``parquet_source``), decide the
splits (``splits``), write the rows (``converter_rows``) into ``<out>.partial`` and rename it
into place (``layout.written_atomically``), so an interrupted run never leaves a half-written
dataset; re-running with the same arguments writes byte-identical files. What it writes is
``artseg_mm.datasets.layout``'s data root plus ``summary.json``. It is library code used by
``tools/dataset_converters/artefact.py``; mmseg ships no converter for this dataset.
"""
import os.path as osp
from pathlib import Path
from typing import List, Optional

from ..datasets import layout
from .converter_rows import write_rows
from .errors import ConversionError
from .parquet_source import DEFAULT_DOWNLOAD_DIR, read_index, resolve_source
from .splits import Amount, make_splits, splits_from_file

CONVERTER_VERSION = '1.0.0'
# recorded in meta.json; --force replaces only a folder that records it, so it stays the
# name converted folders have always carried
CONVERTER_NAME = 'artseg_mm.datasets.artefact_converter'
DEFAULT_OUT_DIR = osp.join('data', 'artefact')
# Training uses 512 crops; a 1024 long side keeps two crops of context per
# side while bringing the 12k px scans down to a size a data loader can read.
DEFAULT_RESIZE_LONG_SIDE = 1024
# The largest published image has 133 Mpx; allow it knowingly, refuse beyond.
DEFAULT_MAX_PIXELS = 200_000_000
LABEL_MODES = tuple(layout.CLASSES_ON_DISK)  # 'full', 'binary'
SPLITS = layout.SPLITS


def convert_artefact(source: str,
                     out_dir: str = DEFAULT_OUT_DIR,
                     *,
                     label_mode: str = 'full',
                     resize_long_side: Optional[int] = None,
                     tile: Optional[int] = None,
                     tile_overlap: int = 0,
                     seed: int = 0,
                     num_samples: Optional[int] = None,
                     val: Amount = None,
                     test: Amount = None,
                     split_file: Optional[str] = None,
                     skip_bad: bool = False,
                     force: bool = False,
                     max_pixels: int = DEFAULT_MAX_PIXELS,
                     download_dir: str = DEFAULT_DOWNLOAD_DIR,
                     progress: bool = True) -> dict:
    """Convert ARTeFACT parquet shards to the mmseg layout; returns the
    summary (also written to ``<out>/summary.json``).

    Args:
        source: folder of parquet shards, one shard, or a hub dataset name.
        out_dir: output folder (refused when non-empty unless ``force``).
        label_mode: 'full' writes class ids 0..15 and 255 (recommended; the
            dataset maps to binary itself), 'binary' writes 0/1/255.
        resize_long_side: shrink images whose long side exceeds it; 0 keeps
            the source size. None: 1024, or 0 when ``tile`` is given.
        tile: cut (resized) images into tiles of this size, ids
            ``<id>_x<tx>_y<ty>``; tiles of one image share its split.
        tile_overlap: pixels shared by neighbouring tiles.
        seed: seed of the stratified split.
        num_samples: draw this many images (stratified by material) first.
        val, test: fractions (< 1) or counts; see :func:`make_splits`.
        split_file: JSON/CSV id -> split, instead of the drawn split.
        skip_bad: skip and list bad rows instead of stopping at the first.
        force: replace a non-empty ``out_dir``.
        max_pixels: refuse images above this many pixels (bad row).
        download_dir: where a hub dataset is downloaded.
        progress: show a tqdm progress bar.
    """
    if label_mode not in LABEL_MODES:
        raise ConversionError(
            f'label_mode must be one of {LABEL_MODES}, got {label_mode!r}')
    if tile is not None and tile <= 0:
        raise ConversionError(f'tile size must be > 0, got {tile}')
    if tile is not None and not 0 <= tile_overlap < tile:
        raise ConversionError(
            f'tile overlap must be in [0, {tile}), got {tile_overlap}')
    if resize_long_side is None:
        resize_long_side = 0 if tile else DEFAULT_RESIZE_LONG_SIDE
    if resize_long_side < 0:
        raise ConversionError(
            f'resize long side must be >= 0, got {resize_long_side}')
    if split_file is not None and num_samples is not None:
        raise ConversionError('give either a split file or --num-samples')

    out = Path(out_dir)
    _check_output(out, force)  # before any download or reading
    root, shards = resolve_source(source, download_dir)
    rows = read_index(shards, root)
    if not rows:
        raise ConversionError(f'the parquet files under {root} hold no rows')
    excluded: List[str] = []
    if split_file is not None:
        splits, excluded = splits_from_file(rows, split_file)
    else:
        splits = make_splits(rows, seed, num_samples, val, test)

    _check_output(out, force)
    out_abs, src_abs = out.resolve(), root.resolve()
    if out_abs == src_abs or out_abs in src_abs.parents:
        raise ConversionError(
            f'output folder {out} contains the source {root}; choose '
            f'another --out')
    with layout.written_atomically(out, 'this converter', ConversionError) as tmp:
        layout.make_split_folders(tmp, SPLITS)
        summary = write_rows(
            rows, splits, shards, root, tmp,
            label_mode=label_mode, resize_long_side=resize_long_side,
            tile=tile, tile_overlap=tile_overlap, skip_bad=skip_bad,
            max_pixels=max_pixels, progress=progress)
        summary['excluded_by_split_file'] = excluded
        meta = layout.meta_record(
            label_mode,
            converter=CONVERTER_NAME,
            converter_version=CONVERTER_VERSION,
            seed=seed,
            args=dict(source=str(source), out_dir=str(out_dir),
                      label_mode=label_mode,
                      resize_long_side=resize_long_side, tile=tile,
                      tile_overlap=tile_overlap, seed=seed,
                      num_samples=num_samples, val=val, test=test,
                      split_file=split_file, skip_bad=skip_bad,
                      max_pixels=max_pixels),
            source_files=[dict(path=s.relative_to(root).as_posix(),
                               bytes=s.stat().st_size) for s in shards],
            renamed_ids={r.source_id: r.out_id for r in rows
                         if r.source_id != r.out_id},
        )
        layout.write_json(tmp / layout.META_JSON, meta)
        layout.write_json(tmp / layout.SUMMARY_JSON, summary)
    print_summary(summary, out)
    return summary


def _check_output(out: Path, force: bool) -> None:
    """Refuse an output that would take the working folder with it, and let ``force``
    replace only a folder this converter wrote (its ``meta.json`` names the converter)."""
    out_abs, here = out.resolve(), Path.cwd().resolve()
    if out_abs == here or out_abs in here.parents:
        raise ConversionError(
            f'--out {out} is the current folder (or one above it): the output folder is '
            'replaced as a whole, so give a folder of its own, e.g. --out data/artefact')
    layout.check_replaceable(out, force, CONVERTER_NAME, 'a folder this converter',
                             ConversionError)


def print_summary(summary: dict, out: Path):
    """Print what was written: images per split and material, class frequencies, skips."""
    print(f'ARTeFACT written to {out} '
          f'(masks: {summary["label_mode_on_disk"]} class ids)')
    print('images per split: ' + ', '.join(
        f'{s} {summary["images_per_split"][s]} '
        f'({summary["files_per_split"][s]} files)' for s in SPLITS))
    print('images per material (train/val/test):')
    for material, counts in summary['images_per_material'].items():
        print(f'  {material:<24} ' + '/'.join(str(counts[s]) for s in SPLITS))
    print('class pixel frequency (train):')
    for name, freq in summary['class_frequency']['train'].items():
        print(f'  {name:<16} {freq:.6f}')
    if summary['skipped']:
        print(f'skipped {len(summary["skipped"])} bad row(s):')
        for item in summary['skipped']:
            print(f'  {item["id"]} ({item["shard"]}): {item["reason"]}')
    if summary.get('excluded_by_split_file'):
        print(f'{len(summary["excluded_by_split_file"])} id(s) not in the '
              f'split file were not converted (listed in summary.json)')
