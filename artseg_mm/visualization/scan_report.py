"""What ``tools/infer.py`` writes for a set of scans: masks, confidence, overlays,
a summary table, pages that show them and the provenance of it all.

Layout of the output folder (``<name>`` may hold subfolders: ``--recursive``
mirrors the input tree)::

    masks/<name>.png          predicted class ids, uint8, at the source resolution;
                              255 where the image is fully transparent (alpha 0)
    palette_masks/<name>.png  the same ids as a palette PNG: opens in colour in any
                              viewer, and reading its indices gives the ids back
    confidence/<name>.png     per pixel round(255 x the top-class probability);
                              0 where transparent
    overlays/<name>.jpg       image | prediction over the image (fill and outlines),
                              with a legend (transparent pixels as a checkerboard)
    thumbs/<name>.jpg         a small copy of the image for the page
    pages/<name>.html         one image: overlay, legend, areas, regions, what to
                              review first, provenance; prints on one sheet
    zoom/<name>.html          large scans: the image and its damage layer as
                              deep-zoom tiles in a zoomable viewer (from disk)
    summary.csv / .json       per file: size, scale, transparent pixels, per class
                              pixels, % of opaque pixels, mm^2, regions, lengths
    exports/                  with --export: the masks as GeoJSON, COCO, CVAT, Label
                              Studio and IIIF files (artseg_mm.interchange.collection)
    provenance.json           model, training data, limitations, options, tool
                              versions and date (also in summary.json)
    index.html                thumbnails, the summary and the provenance; opens
                              from disk
    records/<name>.json       each file's row, written (atomically) once its
                              outputs are
    run.json                  the model (sha256), options and inputs of the run

The records let a killed run continue (``tools/infer.py --resume``): a file whose
record exists is done, and the summary and page are rebuilt from the records.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..datasets.artefact_classes import IGNORE_INDEX
from ..checkpoints.atomic_io import AtomicLocalBackend
from .deep_zoom import OSD_DIR_NAME
from .blend import IGNORED_GREY, blend_classes, outline_classes
from .report_pages import image_page, index_page, write_summary_csv

RECORDS = 'records'
RUN_FILE = 'run.json'
PROVENANCE_FILE = 'provenance.json'
IMAGE_FOLDERS = ('masks', 'palette_masks', 'confidence', 'overlays', 'thumbs', 'pages', 'zoom')
OUTPUT_ENTRIES = IMAGE_FOLDERS + ('exports', 'summary.csv', 'summary.json', 'index.html',
                                  PROVENANCE_FILE, OSD_DIR_NAME, RECORDS, RUN_FILE)
LOCK_FILE = '.infer.lock'
# longest output name stem (bytes): room for suffixes and extensions within 255
MAX_NAME_BYTES = 200  # held (flock) by the run writing to the folder
OVERLAY_SIDE = 1024  # longest side of each overlay panel (px)
THUMB_SIDE = 256
_ROW_BLOCK = 1024    # mask rows counted at a time (bounded temporary memory)
# a row's output files, relative to the folder: all must exist for a record to count
OUTPUT_KEYS = ('mask', 'palette_mask', 'confidence', 'overlay', 'thumb', 'page', 'zoom')


def check_output_dir(out_dir: str, force: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``force``, and outputs that are links
    (``--force`` would remove the link, not what it points to); nothing is changed."""
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'output folder {out_dir} exists and is not a folder')
    if not osp.isdir(out_dir):
        return
    links = [entry for entry in OUTPUT_ENTRIES if osp.islink(osp.join(out_dir, entry))]
    if links:
        raise FileExistsError(f'{osp.join(out_dir, links[0])} is a symbolic link; infer '
                              'writes (and with --force replaces) real files and folders '
                              'there: remove the link or choose another output folder')
    if [entry for entry in os.listdir(out_dir) if entry != LOCK_FILE] and not force:
        raise FileExistsError(f'output folder {out_dir} is not empty; choose another '
                              'or pass --force to replace the results in it')


class OutputLock:
    """Holds ``out_dir`` for one run from its creation: a second run on the same
    folder (which would delete or mix this run's files) gets FileExistsError. The
    lock is the kernel's (``flock``), so a run that is killed, even with SIGKILL,
    leaves none behind; use it as a context manager to release it."""

    def __init__(self, out_dir: str) -> None:
        import fcntl
        os.makedirs(out_dir, exist_ok=True)
        self._fd = os.open(osp.join(out_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(self._fd)
            raise FileExistsError(f'another run is writing to {out_dir}; wait for it to '
                                  'end or choose another output folder') from error

    def __enter__(self) -> 'OutputLock':
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)  # closing releases the lock


def prepare_output_dir(out_dir: str, force: bool) -> None:
    """Create ``out_dir``; a non-empty one is refused unless ``force``, which
    removes only what an earlier run of this writer put there."""
    check_output_dir(out_dir, force)
    if osp.isdir(out_dir) and os.listdir(out_dir):
        for entry in OUTPUT_ENTRIES:
            path = osp.join(out_dir, entry)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.isfile(path):
                os.remove(path)
    make_output_dirs(out_dir)


def make_output_dirs(out_dir: str) -> None:
    for sub in IMAGE_FOLDERS + (RECORDS,):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)


def write_json_atomic(path: str, data) -> None:
    """Write JSON so that a reader (or a killed writer) never sees half a file."""
    AtomicLocalBackend().put_text(json.dumps(data, indent=2), path)


def check_resumable(out_dir: str, run: dict) -> dict:
    """Refuse to continue a run into ``out_dir`` unless it was made by the same
    model, options and inputs as ``run`` (its ``run.json``), saying what changed;
    returns the earlier run's record (its start time dates the whole report)."""
    path = osp.join(out_dir, RUN_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'--resume: {path} is missing: {out_dir} holds no run of '
                                'tools/infer.py to continue')
    with open(path, encoding='utf-8') as f:
        before = json.load(f)
    keys = sorted((set(before) | set(run)) - {'started'})
    changed = [key for key in keys if before.get(key) != run.get(key)]
    if changed:
        raise ValueError(f'--resume: the run in {out_dir} was made with another '
                         f'{", ".join(changed)} ({"; ".join(_change(k, before, run) for k in changed)}); '
                         'masks would mix; start a new --out or use --force')
    if 'started' not in before:
        raise ValueError(f'--resume: {path} was written by an older version of tools/infer.py '
                         '(no start time); start a new --out or use --force')
    return before


def _change(key: str, before: dict, now: dict) -> str:
    if key == 'inputs':
        old, new = before.get(key) or [], now.get(key) or []
        if set(old) == set(new):
            return 'inputs: the same files in another order'
        return f'inputs: {len(set(new) - set(old))} added, {len(set(old) - set(new))} removed'
    return f'{key}: {before.get(key)!r} -> {now.get(key)!r}'


def class_pixel_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class id of a uint8 mask, counted in row blocks; the
    ignore id (transparent pixels) is left out."""
    counts = np.zeros(256, dtype=np.int64)
    for r0 in range(0, mask.shape[0], _ROW_BLOCK):
        block = mask[r0:r0 + _ROW_BLOCK]
        counts += cv2.calcHist([np.ascontiguousarray(block)], [0], None, [256],
                               [0, 256]).ravel().astype(np.int64)
    counts[IGNORE_INDEX] = 0
    if counts[num_classes:].any():
        raise ValueError(f'mask holds ids >= {num_classes} other than {IGNORE_INDEX}')
    return counts[:num_classes]


def checkerboard(shape: Sequence[int], cell: int = 8) -> np.ndarray:
    """A light/dark grey checkerboard (BGR), the usual picture of transparency."""
    rows, cols = np.indices(shape[:2]) // cell
    board = np.where(((rows + cols) % 2 == 0)[..., None], 204, 153).astype(np.uint8)
    return np.repeat(board, 3, axis=2)


def _fit(shape: Sequence[int], side: int) -> Tuple[int, int]:
    scale = min(1.0, side / max(shape[:2]))
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def _legend(width: int, classes: Sequence[str], palette, shares: Sequence[float]) -> np.ndarray:
    """Rows of colour swatch + class name + share, for the classes predicted; a
    class the overlay leaves unpainted (Clean, black in the palette) gets an
    empty swatch and says so."""
    shown = [i for i, share in enumerate(shares) if share > 0]
    per_row = max(1, width // 300)
    rows = (len(shown) + per_row - 1) // per_row
    legend = np.full((max(rows, 1) * 28 + 8, width, 3), 255, dtype=np.uint8)
    for k, idx in enumerate(shown):
        x, y = 8 + (k % per_row) * 300, 8 + (k // per_row) * 28
        r, g, b = palette[idx]
        painted = any(palette[idx])
        if painted:
            cv2.rectangle(legend, (x, y), (x + 20, y + 20), (b, g, r), -1)
        cv2.rectangle(legend, (x, y), (x + 20, y + 20), (0, 0, 0), 1)
        label = f'{classes[idx]} {shares[idx]:.2f}%' + ('' if painted else ' (not drawn)')
        cv2.putText(legend, label, (x + 28, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return legend


def overlay_panels(image_bgr: np.ndarray, mask: np.ndarray, classes: Sequence[str],
                   palette, shares: Sequence[float], side: int = OVERLAY_SIDE) -> np.ndarray:
    """image | class colours blended over the image (:func:`blend_classes`:
    Clean, drawn black, left as it is) with every region outlined
    (:func:`outline_classes`), downsized, with a legend (BGR)."""
    size = _fit(image_bgr.shape, side)
    small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    ids = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    colours = [(b, g, r) for r, g, b in palette]
    blended = outline_classes(blend_classes(small, ids, colours), ids, colours)
    transparent = ids == IGNORE_INDEX  # no part of the object: shown as such, not segmented
    if transparent.any():
        board = checkerboard(small.shape)
        small[transparent] = board[transparent]
        blended[transparent] = board[transparent]
    gap = np.full((small.shape[0], 8, 3), 255, dtype=np.uint8)
    panels = np.concatenate([small, gap, blended], axis=1)
    return np.concatenate([panels, _legend(panels.shape[1], classes, palette, shares)])


def write_palette_mask(path: str, mask: np.ndarray, palette) -> None:
    """``mask``'s class ids as a palette PNG: viewers show the class colours (the
    ignore id 255 grey), while reading the indices (Pillow, mmseg's loader with
    ``imdecode_backend='pillow'``) gives the ids unchanged."""
    from PIL import Image
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[:len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    colours[IGNORE_INDEX] = IGNORED_GREY
    image = Image.fromarray(np.ascontiguousarray(mask))  # 'L': its values are the indices
    image.putpalette(colours.ravel().tolist())  # now 'P', the values unchanged
    image.save(path, optimize=False)


class ScanReport:
    """Collects one row per scan and writes the files listed in the module doc.

    Args:
        out_dir: the output folder.
        classes, palette: the model's class names and RGB colours.
        provenance: the record of what made the masks (model, data, options,
            tools, date), written with the summary and shown on every page.
        zoom_from: longest image side from which a zoomable deep-zoom view is
            written (None: never).
    """

    def __init__(self, out_dir: str, classes: Sequence[str], palette,
                 provenance: Optional[dict] = None, zoom_from: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.classes = list(classes)
        self.palette = palette
        self.provenance = provenance or {}
        self.zoom_from = zoom_from
        self.rows: List[dict] = []
        self._names: Dict[str, int] = {}

    def name_for(self, path: str, relative: Optional[str] = None) -> str:
        """The file's output name: its stem, made unique ('scan', 'scan_tif',
        'scan_tif_2'); with ``relative`` (its path under a searched folder) the
        subfolders are kept ('box1/scan'). Call once per input, in input order."""
        folder = osp.dirname(relative).replace(os.sep, '/') if relative else ''
        stem, ext = osp.splitext(osp.basename(path))
        if len(stem.encode()) > MAX_NAME_BYTES:  # file systems take 255 bytes a name
            digest = hashlib.sha1(stem.encode()).hexdigest()[:8]
            stem = stem.encode()[:MAX_NAME_BYTES - 9].decode(errors='ignore') + '_' + digest
        stem = f'{folder}/{stem}' if folder else stem
        name = stem
        if name in self._names:
            name = f'{stem}_{ext.lstrip(".").lower()}'
        while name in self._names:
            self._names[name] += 1
            name = f'{name}_{self._names[name]}'
        self._names[name] = 1
        return name

    def finished(self, name: str) -> Optional[dict]:
        """The row of a file a killed run completed (its record and outputs exist),
        else None."""
        path = osp.join(self.out_dir, RECORDS, f'{name}.json')
        if not osp.isfile(path):
            return None
        with open(path, encoding='utf-8') as f:
            row = json.load(f)
        outputs = [row[k] for k in OUTPUT_KEYS if k in row]
        if not all(osp.isfile(osp.join(self.out_dir, rel)) for rel in outputs):
            return None
        return row

    def restore(self, row: dict) -> None:
        """Take a finished file's row into the summary."""
        self.rows.append(row)

    def _record(self, name: str, row: dict) -> None:
        path = osp.join(self.out_dir, RECORDS, f'{name}.json')
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_json_atomic(path, row)

    def add(self, path: str, image_bgr: np.ndarray, mask: np.ndarray,
            name: Optional[str] = None, notes: Sequence[str] = (),
            confidence: Optional[np.ndarray] = None, measures: Optional[dict] = None,
            review: Optional[dict] = None) -> dict:
        """Write the outputs of one scan, then its record.

        ``notes``: what reading the file warned of; ``confidence``: its
        confidence map (uint8, 255 = certain); ``measures``: areas, regions and
        lengths with the scale they rest on; ``review``: the unsure damage
        (:func:`artseg_mm.apis.confidence_review.low_confidence_review`).
        """
        if mask.shape != image_bgr.shape[:2]:
            raise ValueError(f'{path}: mask {mask.shape} does not match the image '
                             f'{image_bgr.shape[:2]}')
        name = name or self.name_for(path)
        counts = class_pixel_counts(mask, len(self.classes))
        opaque = int(counts.sum())
        shares = 100.0 * counts / max(opaque, 1)
        files = dict(mask=f'masks/{name}.png', palette_mask=f'palette_masks/{name}.png',
                     overlay=f'overlays/{name}.jpg', thumb=f'thumbs/{name}.jpg',
                     page=f'pages/{name}.html')
        self._write(files['mask'], mask)
        self._makedirs(files['palette_mask'])
        write_palette_mask(osp.join(self.out_dir, files['palette_mask']), mask, self.palette)
        if confidence is not None:
            files['confidence'] = f'confidence/{name}.png'
            self._write(files['confidence'], confidence)
        self._write(files['overlay'], overlay_panels(image_bgr, mask, self.classes,
                                                     self.palette, shares))
        self._write(files['thumb'], cv2.resize(image_bgr, _fit(image_bgr.shape, THUMB_SIDE),
                                               interpolation=cv2.INTER_AREA))
        if self.zoom_from is not None and max(mask.shape) >= self.zoom_from:
            files['zoom'] = self._write_zoom(name, image_bgr, mask, counts)
        row = dict(file=path, status='ok', width=int(mask.shape[1]),
                   height=int(mask.shape[0]), transparent_pixels=int(mask.size - opaque),
                   **files,
                   pixels={c: int(n) for c, n in zip(self.classes, counts)},
                   percent={c: float(s) for c, s in zip(self.classes, shares)})
        if measures is not None:
            row['measures'] = measures
        if review is not None:
            row['review'] = review
        if notes:
            row['notes'] = list(notes)
        self._makedirs(files['page'])
        with open(osp.join(self.out_dir, files['page']), 'w', encoding='utf-8') as f:
            f.write(image_page(row, self.classes, self.palette, self.provenance))
        self._record(name, row)
        self.rows.append(row)
        return row

    def _write_zoom(self, name: str, image_bgr: np.ndarray, mask: np.ndarray,
                    counts: np.ndarray) -> str:
        """Deep-zoom tiles of the image and its damage layer and their viewer page
        (tiles a killed run left unfinished are replaced)."""
        from .deep_zoom import copy_viewer_assets, viewer_page, write_deep_zoom
        rel = f'zoom/{name}.html'
        page = osp.join(self.out_dir, rel)
        self._makedirs(rel)
        folder, base = osp.split(page[:-len('.html')])
        if osp.isdir(osp.join(folder, base)):
            shutil.rmtree(osp.join(folder, base))
        info = write_deep_zoom(image_bgr, mask, self.palette, folder, base)
        assets = osp.join(self.out_dir, copy_viewer_assets(self.out_dir))
        legend = [(c, tuple(self.palette[i])) for i, c in enumerate(self.classes)
                  if any(self.palette[i]) and counts[i]]  # the painted classes it shows
        with open(page, 'w', encoding='utf-8') as f:
            f.write(viewer_page(info, base, legend,
                                osp.relpath(assets, folder).replace(os.sep, '/')))
        return rel

    def add_skipped(self, path: str, reason: str, name: Optional[str] = None) -> None:
        """Record an input that could not be read (``--skip-bad``)."""
        row = dict(file=path, status=f'skipped: {reason}')
        self._record(name or self.name_for(path), row)
        self.rows.append(row)

    def _makedirs(self, rel: str) -> None:
        os.makedirs(osp.dirname(osp.join(self.out_dir, rel)), exist_ok=True)

    def _write(self, rel: str, array: np.ndarray) -> None:
        path = osp.join(self.out_dir, rel)
        self._makedirs(rel)
        if not cv2.imwrite(path, array):  # OpenCV says no more than False: ask the OS why
            try:
                with open(path, 'ab'):
                    reason = 'the encoder failed'
            except OSError as error:
                reason = error.strerror or str(error)
            raise OSError(f'could not write {path}: {reason}')

    def finish(self) -> None:
        """Write summary.csv, summary.json, provenance.json and index.html."""
        write_json_atomic(osp.join(self.out_dir, 'summary.json'),
                          dict(provenance=self.provenance, classes=self.classes,
                               images=self.rows))
        write_json_atomic(osp.join(self.out_dir, PROVENANCE_FILE), self.provenance)
        write_summary_csv(osp.join(self.out_dir, 'summary.csv'), self.rows, self.classes)
        with open(osp.join(self.out_dir, 'index.html'), 'w', encoding='utf-8') as f:
            f.write(index_page(self.rows, self.classes, self.provenance))
