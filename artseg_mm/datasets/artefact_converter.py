"""Convert the published ARTeFACT release into the mmseg folder layout.

ARTeFACT (Hugging Face ``danielaivanova/damaged-media``) ships as parquet
shards whose ``image`` and ``annotation`` columns hold PNG files as
``{bytes, path}`` structs (as the ``datasets`` library stores images). This
module writes what :class:`ARTeFACTDataset` reads::

    <out>/img_dir/{train,val,test}/<id>.png  RGB image
    <out>/ann_dir/{train,val,test}/<id>.png  single-channel class-index mask
    <out>/meta/{train,val,test}.csv          one row per written file
    <out>/meta.json                          version, arguments, sources
    <out>/summary.json                       counts, class pixel frequencies
    <out>/class_weights.json                 inverse-sqrt-frequency weights

It is library code used by ``tools/dataset_converters/artefact.py``; mmseg
ships no converter for this dataset.

Memory stays bounded: rows are read one at a time with pyarrow (at most one
parquet row group of encoded bytes plus one decoded row are held). The largest
published image is 12288 x 10860 (133 Mpx); Pillow's decompression-bomb guard
is replaced by an explicit check of the header size against ``max_pixels``
(default 200 Mpx) before anything is decoded, so such rows are converted
knowingly and anything larger is reported as a bad row, never dropped silently.

The output is written to ``<out>.partial`` and renamed at the end, so an
interrupted run never leaves a half-written dataset; re-running with the same
arguments writes byte-identical files.
"""
import argparse
import csv
import io
import json
import os.path as osp
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from .artefact_classes import (BINARY_CLASSES, FULL_CLASSES, FULL_TO_BINARY,
                               IGNORE_INDEX)
from .orientation import NoPillowPixelLimit, warn_if_oriented

CONVERTER_VERSION = '1.0.0'
HUB_REPO_ID = 'danielaivanova/damaged-media'
DEFAULT_OUT_DIR = osp.join('data', 'artefact')
DEFAULT_DOWNLOAD_DIR = osp.join('data', 'raw', 'damaged-media')
# Training uses 512 crops; a 1024 long side keeps two crops of context per
# side while bringing the 12k px scans down to a size a data loader can read.
DEFAULT_RESIZE_LONG_SIDE = 1024
# The largest published image has 133 Mpx; allow it knowingly, refuse beyond.
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15

SPLITS = ('train', 'val', 'test')
META_COLUMNS = ('id', 'material', 'content', 'type', 'source_width',
                'source_height', 'transform', 'scale', 'tile_x', 'tile_y',
                'parent_id')
REQUIRED_COLUMNS = ('id', 'image', 'annotation')
OPTIONAL_COLUMNS = ('material', 'content', 'type')
LABEL_MODES = ('full', 'binary')
VALID_MASK_VALUES = frozenset(range(len(FULL_CLASSES))) | {IGNORE_INDEX}
PARTIAL_MARKER = '.artefact_converter_partial'
_SAFE_ID = re.compile(r'[^A-Za-z0-9._-]')
_HUB_NAME = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')

Amount = Union[int, float, None]


class ConversionError(RuntimeError):
    """The conversion cannot go on; the message says which file/id and why."""


class BadRowError(ConversionError):
    """One source row is unusable (undecodable, wrong mask size or values)."""

    def __init__(self, row_id: str, shard: str, reason: str):
        self.row_id = row_id
        self.shard = shard
        self.reason = reason
        super().__init__(f'bad row id={row_id!r} in {shard}: {reason}')


@dataclass
class SourceRow:
    """Metadata of one parquet row, read before any image is decoded."""
    source_id: str
    out_id: str
    material: Optional[str]
    content: Optional[str]
    type: Optional[str]
    shard: str
    row_index: int


# --------------------------------------------------------------------------
# Source discovery
# --------------------------------------------------------------------------
def resolve_source(source: str,
                   download_dir: str = DEFAULT_DOWNLOAD_DIR
                   ) -> Tuple[Path, List[Path]]:
    """Return (root, sorted parquet shard paths) for a folder, file or hub
    dataset name. A hub name is downloaded with ``huggingface_hub`` into
    ``download_dir`` (the same files ``huggingface-cli download`` leaves)."""
    path = Path(source)
    if path.is_file():
        if path.suffix != '.parquet':
            raise ConversionError(f'{source} is not a .parquet file')
        return path.parent, [path]
    if path.is_dir():
        shards = sorted(path.glob('**/*.parquet'),
                        key=lambda p: p.relative_to(path).as_posix())
        if not shards:
            raise ConversionError(
                f'no *.parquet files found under {source} (expected the '
                f'shards of {HUB_REPO_ID}, e.g. from `huggingface-cli '
                f'download --repo-type dataset {HUB_REPO_ID} --local-dir '
                f'{DEFAULT_DOWNLOAD_DIR}`)')
        return path, shards
    if not _HUB_NAME.match(source):
        raise ConversionError(
            f'source {source!r} is neither an existing folder or .parquet '
            f'file nor a hub dataset name like {HUB_REPO_ID!r}')
    return resolve_source(download_from_hub(source, download_dir))


def download_from_hub(repo_id: str, download_dir: str) -> str:
    """Download the parquet shards of a hub dataset; returns the folder."""
    try:
        import huggingface_hub
    except ImportError as err:
        raise ConversionError(
            f'{repo_id!r} is not a local folder and huggingface_hub is not '
            f'installed to download it: `pip install huggingface_hub`, or '
            f'download the shards elsewhere and pass the folder') from err
    print(f'{repo_id!r} is not a local folder: downloading the hub dataset '
          f'into {download_dir}')
    try:
        return huggingface_hub.snapshot_download(
            repo_id=repo_id,
            repo_type='dataset',
            local_dir=download_dir,
            allow_patterns=['*.parquet', '**/*.parquet'])
    except Exception as err:  # offline, unknown repo, HTTP errors: re-raised
        raise ConversionError(
            f'could not download hub dataset {repo_id!r} into '
            f'{download_dir} ({type(err).__name__}: {err}); it is not a '
            f'local path either. Without network, copy the parquet shards '
            f'to a folder and pass that folder'
        ) from err


def _safe_id(source_id: str) -> str:
    safe = _SAFE_ID.sub('_', source_id)
    if not safe.strip('._'):
        safe = 'id_' + safe
    return safe


def read_index(shards: Sequence[Path], root: Path) -> List[SourceRow]:
    """Read id/material/content/type of every row (no image bytes)."""
    rows: List[SourceRow] = []
    seen: Dict[str, SourceRow] = {}
    for shard in shards:
        shard_name = shard.relative_to(root).as_posix()
        try:
            pfile = pq.ParquetFile(shard)
        except (OSError, ValueError) as err:
            raise ConversionError(
                f'cannot read parquet file {shard}: {err}') from err
        names = pfile.schema_arrow.names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ConversionError(
                f'{shard} lacks column(s) {missing}; expected the '
                f'{HUB_REPO_ID} schema with {list(REQUIRED_COLUMNS)}')
        columns = ['id'] + [c for c in OPTIONAL_COLUMNS if c in names]
        table = pfile.read(columns=columns)
        data = {c: table.column(c).to_pylist() for c in columns}
        for i, source_id in enumerate(data['id']):
            if source_id is None:
                raise ConversionError(f'{shard} row {i} has no id')
            source_id = str(source_id)
            out_id = _safe_id(source_id)
            if out_id in seen:
                other = seen[out_id]
                raise ConversionError(
                    f'duplicate id {source_id!r}: {shard_name} row {i} and '
                    f'{other.shard} row {other.row_index} (as file name '
                    f'{out_id!r})')
            row = SourceRow(
                source_id=source_id,
                out_id=out_id,
                material=_opt_str(data, 'material', i),
                content=_opt_str(data, 'content', i),
                type=_opt_str(data, 'type', i),
                shard=shard_name,
                row_index=i)
            seen[out_id] = row
            rows.append(row)
    return rows


def _opt_str(data: dict, column: str, i: int) -> Optional[str]:
    value = data[column][i] if column in data else None
    return None if value is None else str(value)


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------
def parse_amount(text: str) -> Amount:
    """A split size on the command line: '0.15' -> fraction, '10' -> count."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a fraction (< 1) or a count, got {text!r}')
    if value < 1:
        return value
    if value != int(value):
        raise argparse.ArgumentTypeError(
            f'a value >= 1 is a count and must be whole, got {text!r}')
    return int(value)


def _resolve_amount(amount: Amount, total: int, name: str) -> int:
    if amount is None:
        return 0
    if isinstance(amount, float) and amount < 1:
        if amount < 0:
            raise ConversionError(f'{name} must be >= 0, got {amount}')
        return int(round(amount * total))
    if float(amount) != int(amount) or amount < 0:
        raise ConversionError(
            f'{name} must be a fraction in [0, 1) or a whole count, '
            f'got {amount}')
    return int(amount)


def stratified_assign(groups: Dict[str, List[str]],
                      targets: Sequence[Tuple[str, int]],
                      remainder: str,
                      cover_remainder: bool = True) -> Dict[str, str]:
    """Assign the (already shuffled) ids of each group to named parts.

    Each part of ``targets`` receives exactly its count; ``remainder`` gets
    the rest. A part first takes one id from every group that can spare one
    while still leaving one for each later part, the remainder included if
    ``cover_remainder`` ("every split sees every material where possible"),
    then fills up proportionally to group sizes (largest deficit first).
    Ties break by group name, so the result depends only on the input order
    of ids.
    """
    remaining = {g: list(ids) for g, ids in groups.items()}
    assignment: Dict[str, str] = {}
    total = sum(len(v) for v in remaining.values())
    wanted = sum(count for _, count in targets)
    if wanted > total:
        raise ConversionError(
            f'asked for {wanted} ids in {[n for n, _ in targets]} but only '
            f'{total} are available')
    for k, (part, count) in enumerate(targets):
        later = sum(1 for _, c in targets[k + 1:] if c > 0)
        later += int(cover_remainder)
        pool = sum(len(v) for v in remaining.values())
        taken = {g: 0 for g in remaining}
        picked = 0
        for g in sorted(remaining, key=lambda g: (-len(remaining[g]), g)):
            if picked < count and len(remaining[g]) > later:
                taken[g] = 1
                picked += 1
        while picked < count:
            spare = [g for g in remaining
                     if len(remaining[g]) - taken[g] > later]
            if not spare:
                spare = [g for g in remaining
                         if len(remaining[g]) - taken[g] > 0]
            # largest shortfall against the proportional share first
            best = min(spare, key=lambda g: (
                taken[g] - len(remaining[g]) * count / pool,
                -len(remaining[g]), g))
            taken[best] += 1
            picked += 1
        for g, n in taken.items():
            for item in remaining[g][:n]:
                assignment[item] = part
            remaining[g] = remaining[g][n:]
    for g, ids in remaining.items():
        for item in ids:
            assignment[item] = remainder
    return assignment


def make_splits(rows: Sequence[SourceRow], seed: int,
                num_samples: Optional[int], val: Amount,
                test: Amount) -> Dict[str, str]:
    """out_id -> split, stratified by material and reproducible from seed.

    ``num_samples`` first draws a material-stratified subset; ``val`` and
    ``test`` are fractions (< 1) or counts of the (sub)set; the rest is
    train. Defaults: 15%/15% on the full set, no test split with
    ``num_samples`` (the study's demo: ``--num-samples 50 --val 10``).
    """
    rng = random.Random(seed)
    groups: Dict[str, List[str]] = {}
    for row in sorted(rows, key=lambda r: r.out_id):
        groups.setdefault(row.material or 'unknown', []).append(row.out_id)
    for g in sorted(groups):
        rng.shuffle(groups[g])
    if num_samples is not None:
        if not 0 < num_samples <= len(rows):
            raise ConversionError(
                f'--num-samples must be in 1..{len(rows)} (rows found), '
                f'got {num_samples}')
        chosen = stratified_assign(groups, [('chosen', num_samples)],
                                   'unused', cover_remainder=False)
        groups = {g: [i for i in ids if chosen[i] == 'chosen']
                  for g, ids in groups.items()}
        groups = {g: ids for g, ids in groups.items() if ids}
    total = sum(len(v) for v in groups.values())
    if val is None:
        val = DEFAULT_VAL_FRACTION
    if test is None:
        test = DEFAULT_TEST_FRACTION if num_samples is None else 0
    n_val = _resolve_amount(val, total, 'val')
    n_test = _resolve_amount(test, total, 'test')
    if n_val + n_test >= total:
        raise ConversionError(
            f'val ({n_val}) + test ({n_test}) leave no training images out '
            f'of {total}')
    return stratified_assign(groups, [('val', n_val), ('test', n_test)],
                             'train')


def read_split_file(path: str) -> Dict[str, str]:
    """Read id -> split from JSON ({id: split} or {split: [ids]}) or CSV
    (columns id,split)."""
    if not osp.isfile(path):
        raise ConversionError(f'split file {path} does not exist')
    mapping: Dict[str, str] = {}
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ConversionError(
                    f'split file {path} is not valid JSON: {err}') from err
        if not isinstance(data, dict):
            raise ConversionError(
                f'split file {path} must hold a JSON object')
        if data and all(k in SPLITS and isinstance(v, list)
                        for k, v in data.items()):
            for split, ids in data.items():
                for i in ids:
                    _add_split(mapping, str(i), split, path)
        else:
            for i, split in data.items():
                _add_split(mapping, str(i), split, path)
    elif path.endswith('.csv'):
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {'id', 'split'} <= set(
                    reader.fieldnames):
                raise ConversionError(
                    f'split file {path} needs the CSV columns id,split '
                    f'(found {reader.fieldnames})')
            for rec in reader:
                _add_split(mapping, rec['id'], rec['split'], path)
    else:
        raise ConversionError(
            f'split file {path} must end in .json or .csv')
    return mapping


def _add_split(mapping: Dict[str, str], row_id: str, split, path: str):
    if split not in SPLITS:
        raise ConversionError(
            f'split file {path}: id {row_id!r} has split {split!r}, '
            f'expected one of {SPLITS}')
    if row_id in mapping and mapping[row_id] != split:
        raise ConversionError(
            f'split file {path}: id {row_id!r} is listed in both '
            f'{mapping[row_id]!r} and {split!r}')
    mapping[row_id] = split


def splits_from_file(rows: Sequence[SourceRow], path: str
                     ) -> Tuple[Dict[str, str], List[str]]:
    """Returns (out_id -> split, source ids not listed in the file)."""
    mapping = read_split_file(path)
    by_source = {r.source_id: r for r in rows}
    unknown = sorted(set(mapping) - set(by_source))
    if unknown:
        raise ConversionError(
            f'split file {path} names {len(unknown)} id(s) not in the '
            f'source: {unknown[:10]}')
    splits = {by_source[i].out_id: s for i, s in mapping.items()}
    excluded = sorted(r.source_id for r in rows if r.source_id not in mapping)
    return splits, excluded


# --------------------------------------------------------------------------
# Decoding, checking and transforming one row
# --------------------------------------------------------------------------
def _struct_bytes(value, column: str, row: SourceRow) -> bytes:
    if not isinstance(value, dict) or value.get('bytes') is None:
        where = value.get('path') if isinstance(value, dict) else None
        raise BadRowError(
            row.source_id, row.shard,
            f'{column} holds no PNG bytes (path={where!r}); expected the '
            f'{{bytes, path}} struct with embedded bytes')
    return value['bytes']


def _header_size(data: bytes, column: str, row: SourceRow,
                 max_pixels: int) -> Tuple[Image.Image, int, int]:
    try:
        with NoPillowPixelLimit():
            img = Image.open(io.BytesIO(data))
    except OSError as err:  # includes PIL.UnidentifiedImageError
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable {column}: {err}') from err
    w, h = img.size
    if w * h > max_pixels:
        raise BadRowError(
            row.source_id, row.shard,
            f'{column} is {w}x{h} = {w * h} px, above max_pixels='
            f'{max_pixels} (raise --max-pixels knowingly, memory permitting)')
    return img, w, h


def decode_image(data: bytes, row: SourceRow,
                 max_pixels: int) -> np.ndarray:
    """PNG/JPEG bytes -> HxWx3 uint8 BGR (cv2 order, as mmseg loads)."""
    header, w, h = _header_size(data, 'image', row, max_pixels)
    try:  # orientation ignored: the mask is stored unrotated (see datasets.orientation)
        img = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as err:
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable image: {err}') from err
    if img is None:
        raise BadRowError(row.source_id, row.shard,
                          'undecodable image (truncated or corrupt file)')
    if img.shape[:2] != (h, w):
        raise BadRowError(
            row.source_id, row.shard,
            f'image decodes to {img.shape[1]}x{img.shape[0]} but its header '
            f'says {w}x{h}')
    warn_if_oriented(header, f'image of row {row.source_id!r} ({row.shard})')
    return img


def decode_mask(data: bytes, row: SourceRow, max_pixels: int) -> np.ndarray:
    """Class-index PNG -> HxW uint8 of class ids. Decoded with Pillow, which
    keeps palette ('P') indices (cv2 would expand them to colours)."""
    img, _, _ = _header_size(data, 'annotation', row, max_pixels)
    if img.mode not in ('L', 'P', '1', 'I', 'I;16', 'I;16B', 'I;16L'):
        raise BadRowError(
            row.source_id, row.shard,
            f'annotation has mode {img.mode!r}; expected a single-channel '
            f'class-index PNG (not the colour-coded annotation_rgb)')
    try:
        with NoPillowPixelLimit():
            mask = np.asarray(img)
    except OSError as err:
        raise BadRowError(row.source_id, row.shard,
                          f'undecodable annotation: {err}') from err
    if mask.dtype != np.uint8:
        bad = sorted(int(v) for v in np.unique(mask)
                     if int(v) not in VALID_MASK_VALUES)
        if bad:
            raise BadRowError(row.source_id, row.shard,
                              _bad_values_message(bad))
        mask = mask.astype(np.uint8)
    return mask


def _bad_values_message(bad: List[int]) -> str:
    return (f'annotation values {bad[:20]} are outside the class ids '
            f'0..{len(FULL_CLASSES) - 1} and {IGNORE_INDEX} (background)')


def check_mask(mask: np.ndarray, image: np.ndarray,
               row: SourceRow) -> np.ndarray:
    """Size and value checks; returns the 256-bin pixel histogram."""
    if mask.shape[:2] != image.shape[:2]:
        raise BadRowError(
            row.source_id, row.shard,
            f'annotation is {mask.shape[1]}x{mask.shape[0]} but the image '
            f'is {image.shape[1]}x{image.shape[0]}')
    hist = histogram(mask)
    bad = [v for v in np.flatnonzero(hist).tolist()
           if v not in VALID_MASK_VALUES]
    if bad:
        raise BadRowError(row.source_id, row.shard, _bad_values_message(bad))
    return hist


def histogram(mask: np.ndarray, block_pixels: int = 1 << 22) -> np.ndarray:
    """256-bin pixel counts of a uint8 mask, in row blocks: np.bincount
    casts to int64, which for a 133 Mpx mask would cost 1 GB at once."""
    hist = np.zeros(256, dtype=np.int64)
    rows = max(1, block_pixels // max(1, mask.shape[1]))
    for y in range(0, mask.shape[0], rows):
        hist += np.bincount(mask[y:y + rows].ravel(), minlength=256)
    return hist


def resize_long_side(image: np.ndarray, mask: np.ndarray,
                     long_side: int) -> Tuple[np.ndarray, np.ndarray, float]:
    """Shrink so the long side is ``long_side``: INTER_AREA for the image,
    nearest for the mask (INTER_NEAREST_EXACT: pixel-centre aligned like
    INTER_AREA and Pillow's NEAREST; never creates new label values)."""
    h, w = mask.shape
    if not long_side or max(h, w) <= long_side:
        return image, mask, 1.0
    scale = long_side / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST_EXACT)
    return image, mask, scale


def tile_starts(length: int, size: int, overlap: int) -> List[int]:
    """Start offsets covering ``length`` with windows of ``size``; the last
    window is aligned to the end (as mmseg's slide inference does)."""
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size, stride))
    return starts + [length - size]


def iter_tiles(image: np.ndarray, mask: np.ndarray, size: int,
               overlap: int) -> Iterator[Tuple[int, int, np.ndarray,
                                               np.ndarray]]:
    h, w = mask.shape
    for ty in tile_starts(h, size, overlap):
        for tx in tile_starts(w, size, overlap):
            yield (tx, ty, image[ty:ty + size, tx:tx + size],
                   mask[ty:ty + size, tx:tx + size])


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _write_png(path: str, array: np.ndarray):
    ok = cv2.imwrite(path, array)
    if not ok:
        raise ConversionError(f'could not write {path}')


CONVERTER_NAME = 'artseg_mm.datasets.artefact_converter'


def _check_output(out: Path, force: bool) -> None:
    """Refuse an output that would take the working folder with it, and let ``force``
    replace only a folder this converter wrote (its ``meta.json`` names the converter)."""
    out_abs, here = out.resolve(), Path.cwd().resolve()
    if out_abs == here or out_abs in here.parents:
        raise ConversionError(
            f'--out {out} is the current folder (or one above it): the output folder is '
            'replaced as a whole, so give a folder of its own, e.g. --out data/artefact')
    if out.exists() and not out.is_dir():
        raise ConversionError(f'output {out} exists and is not a folder')
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not force:
        raise ConversionError(
            f'output folder {out} is not empty; pass --force to replace it')
    try:
        with open(out / 'meta.json', encoding='utf-8') as f:
            written_by = json.load(f).get('converter')
    except (OSError, ValueError, AttributeError):
        written_by = None
    if written_by != CONVERTER_NAME:
        held = ', '.join(sorted(p.name for p in out.iterdir())[:5])
        raise ConversionError(
            f'--force replaces only a folder this converter wrote (a meta.json naming '
            f'{CONVERTER_NAME}); {out} is not one (it holds {held}). Choose another --out, '
            'or empty it yourself.')


def _prepare_output(out: Path, source_root: Path, force: bool) -> Path:
    _check_output(out, force)
    out_abs, src_abs = out.resolve(), source_root.resolve()
    if out_abs == src_abs or out_abs in src_abs.parents:
        raise ConversionError(
            f'output folder {out} contains the source {source_root}; choose '
            f'another --out')
    old = out.parent / (out.name + '.replaced')
    if old.exists():
        raise ConversionError(
            f'{old} exists (it is where the previous output is moved while '
            f'being replaced); move it away')
    tmp = out.parent / (out.name + '.partial')
    if tmp.exists():
        if not (tmp / PARTIAL_MARKER).is_file():
            raise ConversionError(
                f'{tmp} exists and was not written by this converter; move '
                f'it away')
        shutil.rmtree(tmp)  # left over from an interrupted run of ours
    tmp.mkdir(parents=True)
    (tmp / PARTIAL_MARKER).write_text('incomplete artefact conversion\n')
    for kind in ('img_dir', 'ann_dir'):
        for split in SPLITS:
            (tmp / kind / split).mkdir(parents=True)
    (tmp / 'meta').mkdir()
    return tmp


def _finalize_output(tmp: Path, out: Path):
    (tmp / PARTIAL_MARKER).unlink()
    old = None
    if out.exists():
        old = out.parent / (out.name + '.replaced')
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)


def _dump_json(path: Path, data):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write('\n')


def inverse_sqrt_weights(counts: Sequence[int]) -> List[float]:
    """w_c = 1/sqrt(f_c), f_c the pixel frequency, normalised to mean 1;
    classes without pixels get the largest weight of the present ones."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        return [1.0] * len(counts)
    freq = counts / counts.sum()
    present = freq > 0
    weights = np.zeros_like(freq)
    weights[present] = 1.0 / np.sqrt(freq[present])
    weights[~present] = weights[present].max()
    weights = weights / weights.mean()
    return [round(float(w), 6) for w in weights]


def class_weights_record(counts: Sequence[int], classes: Sequence[str],
                        computed_on: str) -> dict:
    """The content of ``class_weights.json``: weights, the classes they are for, counts."""
    return dict(
        class_weights=inverse_sqrt_weights(counts),
        method='inverse_sqrt_frequency',
        classes=list(classes),
        pixel_counts=[int(c) for c in counts],
        computed_on=computed_on,
        absent_classes=[c for c, n in zip(classes, counts) if n == 0])


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
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

    tmp = _prepare_output(out, root, force)
    try:
        summary = _convert_rows(
            rows, splits, shards, root, tmp,
            label_mode=label_mode, resize_long_side=resize_long_side,
            tile=tile, tile_overlap=tile_overlap, skip_bad=skip_bad,
            max_pixels=max_pixels, progress=progress)
        summary['excluded_by_split_file'] = excluded
        meta = dict(
            converter=CONVERTER_NAME,
            converter_version=CONVERTER_VERSION,
            label_mode_on_disk=label_mode,
            classes=list(FULL_CLASSES if label_mode == 'full'
                         else BINARY_CLASSES),
            ignore_index=IGNORE_INDEX,
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
        _dump_json(tmp / 'meta.json', meta)
        _dump_json(tmp / 'summary.json', summary)
        _finalize_output(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the error is re-raised
        raise
    print_summary(summary, out)
    return summary


class UnreadableRowGroup(NamedTuple):
    """Stands for a row of a row group pyarrow could not decode (``--skip-bad``)."""
    reason: str


def _shard_records(shards: Sequence[Path], root: Path, skip_bad: bool) -> Iterator[tuple]:
    """``(shard, row group, row index in the shard, record)`` for every row, one row in
    memory at a time. A row group that cannot be decoded (e.g. a corrupt page: pyarrow's
    "Couldn't deserialize thrift") stops the conversion with the shard and row group
    named; with ``skip_bad`` its rows not read yet come as :class:`UnreadableRowGroup`."""
    for shard in shards:
        pfile = pq.ParquetFile(shard)
        first = 0
        for group in range(pfile.num_row_groups):
            n_rows = pfile.metadata.row_group(group).num_rows
            done = 0
            try:
                for batch in pfile.iter_batches(batch_size=1, row_groups=[group],
                                                columns=list(REQUIRED_COLUMNS)):
                    for record in batch.to_pylist():
                        yield shard, group, first + done, record
                        done += 1
            except (OSError, pa.ArrowException) as err:
                reason = ' '.join(str(err).split())  # pyarrow's message spans lines
                if not skip_bad:
                    raise ConversionError(
                        f'{shard} row group {group} (rows {first}-{first + n_rows - 1}) '
                        f'cannot be read: {reason} The file is damaged: download it again, '
                        'or pass --skip-bad to skip the rows that cannot be read') from err
                for index in range(first + done, first + n_rows):
                    yield shard, group, index, UnreadableRowGroup(reason)
            first += n_rows


def _convert_rows(rows, splits, shards, root, tmp, *, label_mode,
                  resize_long_side, tile, tile_overlap, skip_bad,
                  max_pixels, progress) -> dict:
    by_key = {(r.shard, r.row_index): r for r in rows}
    meta_rows: Dict[str, List[dict]] = {s: [] for s in SPLITS}
    n_classes = len(FULL_CLASSES) if label_mode == 'full' else 2
    pixels = {s: np.zeros(256, dtype=np.int64) for s in SPLITS}
    images_per_split = {s: 0 for s in SPLITS}
    per_material: Dict[str, Dict[str, int]] = {}
    skipped: List[dict] = []
    binary_lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for full_id, binary_id in FULL_TO_BINARY.items():
        binary_lut[full_id] = binary_id

    bar = tqdm(total=len(splits), desc='ARTeFACT', unit='img',
               disable=not progress)
    for shard, row_group, index, record in _shard_records(shards, root, skip_bad):
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
            image = decode_image(
                _struct_bytes(record['image'], 'image', row), row, max_pixels)
            mask = decode_mask(
                _struct_bytes(record['annotation'], 'annotation', row), row, max_pixels)
            check_mask(mask, image, row)
        except BadRowError as err:
            if not skip_bad:
                raise
            skipped.append(dict(id=err.row_id, shard=err.shard,
                                reason=err.reason, split=split))
            bar.write(f'skipped: {err}')
            bar.update(1)
            continue
        _write_row(row, split, image, mask, tmp, meta_rows[split],
                   pixels[split], label_mode, binary_lut,
                   resize_long_side, tile, tile_overlap)
        del image, mask
        images_per_split[split] += 1
        material = row.material or 'unknown'
        per_material.setdefault(material, {s: 0 for s in SPLITS})
        per_material[material][split] += 1
        bar.update(1)
    bar.close()

    for split in SPLITS:
        with open(tmp / 'meta' / f'{split}.csv', 'w', newline='',
                  encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=META_COLUMNS,
                                    lineterminator='\n')
            writer.writeheader()
            writer.writerows(sorted(meta_rows[split], key=lambda r: r['id']))

    classes = FULL_CLASSES if label_mode == 'full' else BINARY_CLASSES
    train_counts = pixels['train'][:n_classes]
    computed_on = 'train'
    if train_counts.sum() == 0:
        train_counts = sum(pixels[s] for s in SPLITS)[:n_classes]
        computed_on = 'all splits (train has no labelled pixels)'
    _dump_json(tmp / 'class_weights.json',
               class_weights_record(train_counts, classes, computed_on))
    if label_mode == 'full':
        binary_counts = [train_counts[0], train_counts[1:].sum()]
        _dump_json(tmp / 'class_weights_binary.json',
                   class_weights_record(binary_counts, BINARY_CLASSES,
                                        computed_on))

    class_pixels, class_freq = {}, {}
    for split in SPLITS:
        counts = pixels[split][:n_classes]
        total = int(counts.sum())
        class_pixels[split] = {c: int(n) for c, n in zip(classes, counts)}
        class_pixels[split]['ignore'] = int(pixels[split][IGNORE_INDEX])
        class_freq[split] = {c: (round(int(n) / total, 8) if total else 0.0)
                             for c, n in zip(classes, counts)}
    return dict(
        label_mode_on_disk=label_mode,
        images_per_split=images_per_split,
        files_per_split={s: len(meta_rows[s]) for s in SPLITS},
        images_per_material=dict(sorted(per_material.items())),
        class_pixels=class_pixels,
        class_frequency=class_freq,
        skipped=skipped,
    )


def _write_row(row, split, image, mask, tmp, meta_rows, pixels, label_mode,
               binary_lut, long_side, tile, tile_overlap):
    src_h, src_w = mask.shape
    image, mask, scale = resize_long_side(image, mask, long_side)
    if label_mode == 'binary':
        mask = binary_lut[mask]
    transform = 'resize' if scale != 1.0 else 'none'
    if tile:
        transform = 'resize+tile' if scale != 1.0 else 'tile'
        pieces = ((f'{row.out_id}_x{tx}_y{ty}', tx, ty, img, msk)
                  for tx, ty, img, msk in iter_tiles(image, mask, tile,
                                                     tile_overlap))
    else:
        pieces = [(row.out_id, '', '', image, mask)]
    pixels += histogram(mask)  # each source pixel once, however the tiles overlap
    for out_id, tx, ty, img, msk in pieces:
        _write_png(str(tmp / 'img_dir' / split / f'{out_id}.png'), img)
        _write_png(str(tmp / 'ann_dir' / split / f'{out_id}.png'), msk)
        meta_rows.append(dict(
            id=out_id, material=row.material or '', content=row.content or '',
            type=row.type or '', source_width=src_w, source_height=src_h,
            transform=transform, scale=repr(float(scale)), tile_x=tx,
            tile_y=ty, parent_id=row.out_id))


def print_summary(summary: dict, out: Path):
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
