"""The on-disk layout of an ARTeFACT data root, defined once for its writers and readers.

The converter, the demo generator and the fold maker write it; ``ARTeFACTDataset`` and the
fold reader read it::

    <root>/img_dir/<split>/<id>.png     image
    <root>/ann_dir/<split>/<id>.png     single-channel mask of class ids (255 = background)
    <root>/meta/<split>.csv             sidecar: one row per image, SIDECAR_COLUMNS
    <root>/meta.json                    how the folder was made; label_mode_on_disk, classes
    <root>/summary.json                 counts per split and material (converter)
    <root>/class_weights.json           loss class weights for the label set on disk
    <root>/class_weights_binary.json    the same for the binary label set (full masks only)

    <folds>/<fold>/<split>.txt          a fold's split file: lines '<split folder>/<id>'
    <folds>/folds.json                  the held-out group of each fold

A data root is written into ``<root>.partial`` and renamed into place when complete
(:func:`written_atomically`), so an interrupted writer never leaves a complete-looking half
dataset.
"""
import csv
import io
import json
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Tuple, Type

from .artefact_classes import BINARY_CLASSES, FULL_CLASSES, IGNORE_INDEX

IMG_DIR = 'img_dir'
ANN_DIR = 'ann_dir'
META_DIR = 'meta'
SPLITS = ('train', 'val', 'test')
IMAGE_SUFFIX = '.png'  # images and masks alike
SIDECAR_SUFFIX = '.csv'

META_JSON = 'meta.json'
SUMMARY_JSON = 'summary.json'
CLASS_WEIGHTS_JSON = 'class_weights.json'
CLASS_WEIGHTS_BINARY_JSON = 'class_weights_binary.json'
FOLDS_INDEX = 'folds.json'

# meta.json: which label set the masks hold; a root without the key holds full ids
LABEL_MODE_KEY = 'label_mode_on_disk'
CLASSES_ON_DISK = {'full': FULL_CLASSES, 'binary': BINARY_CLASSES}

SIDECAR_COLUMNS = ('id', 'material', 'content', 'type', 'source_width', 'source_height',
                   'transform', 'scale', 'tile_x', 'tile_y', 'parent_id')
# the sidecar columns each sample of the dataset carries (None where there is no sidecar)
SAMPLE_INFO_COLUMNS = ('material', 'content', 'type')

PARTIAL_SUFFIX = '.partial'
REPLACED_SUFFIX = '.replaced'
# the name the converter has always used, so its leftovers are still recognised as ours
PARTIAL_MARKER = '.artefact_converter_partial'


# ----------------------------------------------------------------------------- paths
def sample_file(kind: str, split: str, sample_id: str) -> str:
    """``img_dir/<split>/<id>.png`` (``kind`` IMG_DIR) or the mask's ``ann_dir/...`` path,
    relative to the root."""
    return f'{kind}/{split}/{sample_id}{IMAGE_SUFFIX}'


def sidecar_file(split: str) -> str:
    """``meta/<split>.csv``, relative to the root."""
    return f'{META_DIR}/{split}{SIDECAR_SUFFIX}'


def sidecar_of_split_folder(split_dir: str) -> str:
    """The sidecar of the images in ``<root>/img_dir/<split>``: ``<root>/meta/<split>.csv``."""
    split_dir = osp.normpath(split_dir)
    return osp.join(osp.dirname(osp.dirname(split_dir)), sidecar_file(osp.basename(split_dir)))


def sidecar_files(root) -> List[Path]:
    """Every ``meta/<split>.csv`` of a root, sorted by name."""
    return sorted(Path(root, META_DIR).glob(f'*{SIDECAR_SUFFIX}'))


def make_split_folders(root: Path, splits: Iterable[str]) -> None:
    """Create ``img_dir/<split>``, ``ann_dir/<split>`` for each split and ``meta/``."""
    for kind in (IMG_DIR, ANN_DIR):
        for split in splits:
            (root / kind / split).mkdir(parents=True)
    (root / META_DIR).mkdir()


def fold_split_file(folds_dir, fold: str, split: str) -> Path:
    """``<folds>/<fold>/<split>.txt``."""
    return Path(folds_dir, fold, f'{split}.txt')


def split_file_line(split_folder: str, sample_id: str) -> str:
    """A split-file line: the image's path under ``img_dir/`` (and ``ann_dir/``) sans suffix."""
    return f'{split_folder}/{sample_id}'


# ------------------------------------------------------------------------- the sidecar
def sidecar_text(rows: Iterable[dict]) -> str:
    """The CSV text of a sidecar: the SIDECAR_COLUMNS header, then ``rows`` in order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SIDECAR_COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_sidecar(root: Path, split: str, rows: Iterable[dict]) -> bytes:
    """Write ``meta/<split>.csv``; returns the bytes written."""
    data = sidecar_text(rows).encode('utf-8')
    (root / sidecar_file(split)).write_bytes(data)
    return data


def read_sidecar_rows(path) -> Iterator[Tuple[int, dict]]:
    """``(line number, row)`` of a sidecar CSV, after checking that it has an ``id`` column."""
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or 'id' not in reader.fieldnames:
            raise ValueError(f'ARTeFACT sidecar {path} has no `id` column '
                             f'(header: {reader.fieldnames})')
        yield from enumerate(reader, start=2)


def read_sidecar(path) -> Dict[str, dict]:
    """Rows of a sidecar CSV keyed by ``id``; an id listed twice is refused."""
    rows: Dict[str, dict] = {}
    for line, row in read_sidecar_rows(path):
        if row['id'] in rows:
            raise ValueError(f"ARTeFACT sidecar {path} line {line}: id '{row['id']}' "
                             f'appears twice')
        rows[row['id']] = row
    return rows


# ------------------------------------------------------------------------ JSON records
def json_text(data) -> str:
    """How every JSON file of a root is written: indented, keys sorted, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True) + '\n'


def write_json(path: Path, data) -> bytes:
    """Write ``data`` as :func:`json_text`; returns the bytes written."""
    encoded = json_text(data).encode('utf-8')
    Path(path).write_bytes(encoded)
    return encoded


def meta_record(label_mode: str, **writer_info) -> dict:
    """``meta.json``: the label set on disk, its classes and ignore index, and what the
    writer records about how it made the folder."""
    if label_mode not in CLASSES_ON_DISK:
        raise ValueError(f'label mode on disk must be one of {tuple(CLASSES_ON_DISK)}, '
                         f'got {label_mode!r}')
    return {LABEL_MODE_KEY: label_mode, 'classes': list(CLASSES_ON_DISK[label_mode]),
            'ignore_index': IGNORE_INDEX, **writer_info}


def read_meta(root) -> dict:
    """``<root>/meta.json`` as a dict; ``{}`` when there is none."""
    path = Path(root, META_JSON)
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding='utf-8'))
    except ValueError as err:
        raise ValueError(f'{path} is not valid JSON: {err}') from err
    if not isinstance(meta, dict):
        raise ValueError(f'{path} holds a {type(meta).__name__}, not a JSON object')
    return meta


def label_mode_on_disk(root) -> str:
    """The label set of the masks under ``root``, from its ``meta.json`` ('full' without one)."""
    return read_meta(root).get(LABEL_MODE_KEY, 'full')


# ---------------------------------------------------------------------- atomic writing
def check_replaceable(out: Path, force: bool, writer: str, kind: str,
                      error: Type[Exception]) -> None:
    """Refuse ``out`` as the output of ``writer`` unless it is absent, empty, or, with
    ``force``, a data root ``writer`` wrote (its ``meta.json`` names it in
    ``converter``): a link (replacing it would leave its target empty), a file and a
    folder of the user's are never replaced. ``kind`` names what the writer writes in
    the message ('a folder this converter'); ``error`` is the writer's error type."""
    if out.is_symlink():
        raise error(f'--out {out} is a symbolic link (to {os.readlink(out)}): the output '
                    'folder is replaced as a whole, which would replace the link and leave '
                    'its target empty; give the target folder itself')
    if out.exists() and not out.is_dir():
        raise error(f'--out {out} exists and is not a folder')
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not force:
        raise error(f'--out {out} is not empty; pass --force to replace it')
    try:
        written_by = read_meta(out).get('converter')
    except (OSError, ValueError):  # unreadable: not a folder this writer wrote
        written_by = None
    if written_by != writer:
        held = ', '.join(sorted(p.name for p in out.iterdir())[:5])
        raise error(f'--force replaces only {kind} wrote (a meta.json naming {writer}); '
                    f'{out} is not one (it holds {held}). Choose another --out, or empty '
                    'it yourself.')


@contextmanager
def written_atomically(out, writer: str,
                       error: Type[Exception] = FileExistsError) -> Iterator[Path]:
    """Yield ``<out>.partial`` to write a data root into; when the block completes, put it
    in place of ``out`` (the previous ``out``, if any, is removed only after that), and
    when it raises, remove it.

    A ``<out>.partial`` left by an interrupted writer (it holds PARTIAL_MARKER) is removed
    first; any other one, and a ``<out>.replaced`` (where the previous ``out`` waits while
    being replaced), is refused with ``error`` naming it. ``writer`` says who writes, for
    those messages (e.g. 'this converter').
    """
    out = Path(out)
    old = out.parent / (out.name + REPLACED_SUFFIX)
    if old.exists():
        raise error(f'{old} exists (it is where the previous output is moved while '
                    f'being replaced); move it away')
    tmp = out.parent / (out.name + PARTIAL_SUFFIX)
    if tmp.exists():
        if not (tmp / PARTIAL_MARKER).is_file():
            raise error(f'{tmp} exists and was not written by {writer}; move it away')
        shutil.rmtree(tmp)  # left over from an interrupted run
    tmp.mkdir(parents=True)
    try:
        (tmp / PARTIAL_MARKER).write_text(f'incomplete output of {writer}\n')
        yield tmp
        (tmp / PARTIAL_MARKER).unlink()
        if out.exists():
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the error is re-raised
        raise
