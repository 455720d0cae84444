"""A small synthetic stand-in for ARTeFACT: painted heritage-like images with rendered damage.

The real ARTeFACT release cannot be shipped and no network reaches it here, so this module
paints a dataset in the same layout and label set (see ``artefact_classes``):
``img_dir/{train,val}/<id>.png``, ``ann_dir/{train,val}/<id>.png`` (single-channel masks of
FULL class ids, 255 = background mount), ``meta/{train,val}.csv``, ``meta.json`` and, as the
converter writes them, ``class_weights.json`` (16 classes) and ``class_weights_binary.json``
from the train split's pixel counts.

Each image is a substrate texture (canvas weave, paper fibres, photographic grain and sepia,
parchment mottling) under painted content (gradients, brush strokes, shapes, line work), on
which damage is rendered: craquelure and branching cracks, scratches, stains with a tide line,
dust specks, material loss showing the ground, folds, handwriting, and sometimes a mount
border. Every damage layer is drawn without anti-aliasing from a boolean mask, and that mask is
what the label map records, so masks are exact. Only numpy and OpenCV are used; every image is
drawn from its own generator seeded with ``(seed, index)``, so the output is byte-identical for
a given seed and size.
"""
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .artefact_classes import BINARY_CLASSES, FULL_CLASSES, FULL_TO_BINARY, IGNORE_INDEX
from .artefact_converter import class_weights_record

GENERATOR_NAME = 'artseg_mm.datasets.demo_generator'
GENERATOR_VERSION = 2  # 2: class_weights*.json
META_COLUMNS = ('id', 'material', 'content', 'type', 'source_width', 'source_height',
                'transform', 'scale', 'tile_x', 'tile_y', 'parent_id')
MATERIALS = ('canvas', 'paper', 'photograph', 'parchment')
# material -> (possible content types, object type)
MATERIAL_CONTENT = {
    'canvas': (('artistic depiction', 'geometric patterns'), 'painting'),
    'paper': (('line art', 'artistic depiction', 'geometric patterns'), 'drawing'),
    'photograph': (('photographic depiction',), 'photograph'),
    'parchment': (('line art', 'artistic depiction'), 'manuscript'),
}
CLASS_ID = {name: idx for idx, name in enumerate(FULL_CLASSES)}


# ----------------------------------------------------------------------------- helpers
def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1] of shape (size, size): bicubic upsampling of a coarse grid."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def _blob(rng: np.random.Generator, size: int, rmin: float, rmax: float) -> np.ndarray:
    """Irregular filled blob (bool mask) around a random centre with radius in [rmin, rmax]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(0.1 * size, 0.9 * size, 2)
    radius = rng.uniform(rmin, rmax)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / radius
    wobble = _smooth_noise(rng, size, int(rng.integers(4, 9)))
    return dist + 0.6 * (wobble - 0.5) < 1.0


def _random_walk(rng: np.random.Generator, size: int, steps: int, step_len: float,
                 turn: float, start: Optional[np.ndarray] = None,
                 angle: Optional[float] = None) -> np.ndarray:
    """Polyline (N x 2 int32 points) of a random walk with bounded turning."""
    pos = rng.uniform(0, size, 2) if start is None else np.asarray(start, np.float64)
    ang = rng.uniform(0, 2 * np.pi) if angle is None else angle
    points = [pos.copy()]
    for _ in range(steps):
        ang += rng.normal(0, turn)
        pos = pos + step_len * np.array([np.cos(ang), np.sin(ang)])
        points.append(pos.copy())
    return np.round(np.array(points)).astype(np.int32)


def _paint(img: np.ndarray, mask: np.ndarray, colour, alpha: float) -> None:
    """Blend ``colour`` into ``img`` where ``mask`` is true, in place."""
    img[mask] = (1 - alpha) * img[mask] + alpha * np.asarray(colour, np.float32)


def _lines_mask(size: int, polylines: List[np.ndarray], thickness: int) -> np.ndarray:
    """Bool mask of polylines drawn without anti-aliasing (so mask == drawn pixels)."""
    layer = np.zeros((size, size), np.uint8)
    cv2.polylines(layer, polylines, False, 255, thickness=thickness, lineType=cv2.LINE_8)
    return layer > 0


# ---------------------------------------------------------------------------- substrate
def _substrate(rng: np.random.Generator, size: int, material: str) -> Tuple[np.ndarray, np.ndarray]:
    """(base colour image, luminance modulation) of the support; both float32 in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if material == 'canvas':
        period = rng.uniform(3.0, 5.0)
        weave = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        modulation = 1.0 + 0.07 * weave + 0.04 * (_smooth_noise(rng, size, 24) - 0.5)
        base = np.array([0.82, 0.76, 0.64], np.float32)
    elif material == 'paper':
        fibres = np.zeros((size, size), np.float32)
        for _ in range(size // 2):
            line = _random_walk(rng, size, 6, rng.uniform(2, 5), 0.3)
            cv2.polylines(fibres, [line], False, float(rng.uniform(-1, 1)), 1, cv2.LINE_8)
        fibres = cv2.GaussianBlur(fibres, (3, 3), 0)
        modulation = 1.0 + 0.04 * fibres + 0.06 * (_smooth_noise(rng, size, 8) - 0.5)
        base = np.array([0.93, 0.91, 0.85], np.float32)
    elif material == 'photograph':
        modulation = 1.0 + rng.normal(0, 0.03, (size, size)).astype(np.float32)
        base = np.array([0.80, 0.72, 0.58], np.float32)
    else:  # parchment
        modulation = 1.0 + 0.18 * (_smooth_noise(rng, size, 6) - 0.5) \
            + 0.05 * (_smooth_noise(rng, size, 32) - 0.5)
        base = np.array([0.86, 0.76, 0.57], np.float32)
    img = np.broadcast_to(base, (size, size, 3)).copy()
    return img, modulation.astype(np.float32)


# ------------------------------------------------------------------------------ content
def _content(rng: np.random.Generator, img: np.ndarray, content: str, material: str) -> None:
    """Paint the depicted content onto ``img`` in place."""
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if content == 'artistic depiction':
        c0, c1 = rng.uniform(0.2, 0.9, (2, 3)).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)), 0, 1)[..., None]
        img[:] = 0.25 * img + 0.75 * ((1 - t) * c0 + t * c1)
        for _ in range(int(rng.integers(2, 5))):
            layer = np.zeros((size, size), np.uint8)
            axes = tuple(int(a) for a in rng.uniform(0.08, 0.25, 2) * size)
            centre = tuple(int(c) for c in rng.uniform(0.15, 0.85, 2) * size)
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
            _paint(img, layer > 0, rng.uniform(0.1, 0.95, 3), 0.8)
        for _ in range(int(rng.integers(8, 20))):
            stroke = _random_walk(rng, size, int(rng.integers(4, 10)), size / 24, 0.35)
            thick = max(2, int(rng.uniform(0.015, 0.05) * size))
            _paint(img, _lines_mask(size, [stroke], thick), rng.uniform(0.1, 0.95, 3), 0.7)
        img[:] = cv2.GaussianBlur(img, (3, 3), 0)
    elif content == 'line art':
        ink = np.array([0.30, 0.22, 0.15], np.float32)
        for _ in range(int(rng.integers(8, 16))):
            t = np.linspace(0, 1, 40)
            x0, y0, x1, y1 = rng.uniform(0.1, 0.9, 4) * size
            amp, freq, phase = rng.uniform(3, 15), rng.uniform(0.5, 2.5), rng.uniform(0, 6.3)
            px = x0 + (x1 - x0) * t - amp * np.sin(2 * np.pi * freq * t + phase) * (y1 - y0) / size
            py = y0 + (y1 - y0) * t + amp * np.sin(2 * np.pi * freq * t + phase) * (x1 - x0) / size
            curve = np.round(np.stack([px, py], 1)).astype(np.int32)
            _paint(img, _lines_mask(size, [curve], 1), ink, 0.55)
    elif content == 'photographic depiction':
        tone = 0.35 + 0.5 * _smooth_noise(rng, size, int(rng.integers(3, 6)))
        for _ in range(int(rng.integers(1, 4))):
            tone = np.where(_blob(rng, size, 0.1 * size, 0.3 * size),
                            tone * rng.uniform(0.5, 0.9), tone)
        tone = cv2.GaussianBlur(tone.astype(np.float32), (0, 0), 2.0)
        sepia = np.array([1.0, 0.86, 0.66], np.float32) if material == 'photograph' \
            else np.ones(3, np.float32)
        img[:] = tone[..., None] * sepia
    else:  # geometric patterns
        step = int(rng.integers(size // 8, size // 4))
        colours = rng.uniform(0.15, 0.9, (3, 3)).astype(np.float32)
        for gy in range(0, size, step):
            for gx in range(0, size, step):
                layer = np.zeros((size, size), np.uint8)
                idx = ((gx + gy) // step) % 3
                if idx == 2:
                    cv2.circle(layer, (gx + step // 2, gy + step // 2), step // 3, 255, -1)
                else:
                    cv2.rectangle(layer, (gx + 2, gy + 2), (gx + step - 3, gy + step - 3), 255, -1)
                _paint(img, layer > 0, colours[idx], 0.75)


# ------------------------------------------------------------------------------- damage
def _material_loss(rng, img, ground):
    mask = np.zeros(img.shape[:2], bool)
    for _ in range(int(rng.integers(1, 3))):
        mask |= _blob(rng, img.shape[0], 0.04 * img.shape[0], 0.12 * img.shape[0])
    _paint(img, mask, ground, 0.92)
    return mask


def _staining(rng, img, ground):
    size = img.shape[0]
    mask = _blob(rng, size, 0.10 * size, 0.22 * size)
    tint = rng.uniform([0.45, 0.30, 0.10], [0.65, 0.50, 0.30]).astype(np.float32)
    img[mask] = img[mask] * (0.3 + 0.7 * tint)
    rim = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    rim &= mask
    img[rim] *= 0.6
    return mask


def _cracks(rng, img, ground):
    size = img.shape[0]
    if rng.random() < 0.5:  # craquelure: jittered Voronoi cell edges inside a region
        region = _blob(rng, size, 0.15 * size, 0.3 * size)
        cell = rng.uniform(0.04, 0.08) * size
        n = max(4, int(region.sum() / cell ** 2))
        ys, xs = np.nonzero(region)
        pick = rng.integers(0, len(ys), n)
        seeds = np.stack([ys[pick], xs[pick]], 1).astype(np.float32)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        yy += 0.3 * cell * (_smooth_noise(rng, size, 16) - 0.5)
        xx += 0.3 * cell * (_smooth_noise(rng, size, 16) - 0.5)
        best = np.full((size, size), np.inf, np.float32)
        label = np.zeros((size, size), np.int32)
        for i, (sy, sx) in enumerate(seeds):
            d = (yy - sy) ** 2 + (xx - sx) ** 2
            closer = d < best
            best[closer] = d[closer]
            label[closer] = i
        edge = np.zeros((size, size), bool)
        edge[:, :-1] |= label[:, :-1] != label[:, 1:]
        edge[:-1, :] |= label[:-1, :] != label[1:, :]
        mask = edge & region
    else:  # branching cracks
        lines = []
        for _ in range(int(rng.integers(1, 3))):
            trunk = _random_walk(rng, size, int(rng.integers(15, 30)), size / 40, 0.35)
            lines.append(trunk)
            for _ in range(int(rng.integers(2, 6))):
                start = trunk[int(rng.integers(1, len(trunk)))]
                lines.append(_random_walk(rng, size, int(rng.integers(4, 12)), size / 50, 0.5,
                                          start=start))
        mask = _lines_mask(size, lines, int(rng.integers(1, 3)))
    _paint(img, mask, (0.08, 0.06, 0.05), 0.85)
    return mask


def _fold(rng, img, ground):
    size = img.shape[0]
    horizontal = rng.random() < 0.5
    pos = int(rng.uniform(0.2, 0.8) * size)
    width = int(rng.integers(2, 4))
    light = np.zeros((size, size), bool)
    dark = np.zeros((size, size), bool)
    if horizontal:
        light[pos:pos + width] = True
        dark[pos + width:pos + 2 * width] = True
    else:
        light[:, pos:pos + width] = True
        dark[:, pos + width:pos + 2 * width] = True
    img[light] = np.clip(img[light] + 0.3, 0, 1)
    img[dark] *= 0.5
    return light | dark


def _scratch(rng, img, ground):
    size = img.shape[0]
    lines = [_random_walk(rng, size, int(rng.integers(10, 25)), size / 20, 0.08)
             for _ in range(int(rng.integers(2, 6)))]
    mask = _lines_mask(size, lines, int(rng.integers(1, 3)))
    _paint(img, mask, (0.97, 0.97, 0.95), 0.85)
    return mask


def _writing(rng, img, ground):
    size = img.shape[0]
    layer = np.zeros((size, size), np.uint8)
    letters = 'abcdefghiklmnoprstuvwy'
    scale = rng.uniform(0.5, 0.9) * size / 256
    x0, y0 = int(rng.uniform(0.05, 0.4) * size), int(rng.uniform(0.15, 0.6) * size)
    for line in range(int(rng.integers(1, 4))):
        text = ' '.join(''.join(rng.choice(list(letters), int(rng.integers(3, 8))))
                        for _ in range(int(rng.integers(2, 4))))
        y = y0 + int(line * 28 * scale * 1.2)
        cv2.putText(layer, text, (x0, y), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.2 * scale, 255,
                    max(1, int(round(2 * scale))), cv2.LINE_8)
    mask = layer > 0
    ink = [(0.05, 0.05, 0.25), (0.05, 0.05, 0.05), (0.25, 0.12, 0.05)][int(rng.integers(0, 3))]
    _paint(img, mask, ink, 0.9)
    return mask


def _dust(rng, img, ground):
    size = img.shape[0]
    layer = np.zeros((size, size), np.uint8)
    n = int(rng.integers(size // 6, size // 2))
    centres = rng.integers(0, size, (n, 2))
    radii = rng.integers(1, 3, n)
    for (x, y), r in zip(centres, radii):
        cv2.circle(layer, (int(x), int(y)), int(r), 255, -1, cv2.LINE_8)
    mask = layer > 0
    _paint(img, mask, (0.15, 0.14, 0.13) if rng.random() < 0.6 else (0.98, 0.98, 0.96), 0.8)
    return mask


# Drawing order: stains sit under losses and cracks; dust lands on top. A later layer
# overwrites an earlier one both in the picture and in the mask.
DAMAGE_RENDERERS: Tuple[Tuple[str, Callable], ...] = (
    ('Staining', _staining),
    ('Material loss', _material_loss),
    ('Cracks', _cracks),
    ('Fold', _fold),
    ('Scratch', _scratch),
    ('Writing', _writing),
    ('Dust', _dust),
)
GROUND = {  # what material loss exposes
    'canvas': (0.78, 0.70, 0.55),
    'paper': (0.99, 0.98, 0.96),
    'photograph': (0.96, 0.95, 0.92),
    'parchment': (0.45, 0.33, 0.20),
}


def _border(rng, img, mask) -> None:
    """Paint a mount around the artwork on 1-4 sides and label it ignore (255)."""
    size = img.shape[0]
    colour = np.float32(rng.uniform(0.05, 0.35)) * np.ones(3, np.float32)
    region = np.zeros((size, size), bool)
    sides = rng.permutation(4)[:int(rng.integers(1, 5))]
    for side in sides:
        width = int(rng.uniform(0.03, 0.09) * size) + 1
        if side == 0:
            region[:width] = True
        elif side == 1:
            region[-width:] = True
        elif side == 2:
            region[:, :width] = True
        else:
            region[:, -width:] = True
    img[region] = colour
    mask[region] = IGNORE_INDEX


def render_sample(rng: np.random.Generator, size: int,
                  material: str) -> Tuple[np.ndarray, np.ndarray, str, str]:
    """Draw one image. Returns (BGR uint8 image, uint8 mask of FULL ids / 255, content, type)."""
    contents, obj_type = MATERIAL_CONTENT[material]
    content = contents[int(rng.integers(0, len(contents)))]
    img, modulation = _substrate(rng, size, material)
    _content(rng, img, content, material)
    img *= modulation[..., None]
    mask = np.zeros((size, size), np.uint8)
    # 2-4 damage types per image, each present in about half of the images.
    chosen = sorted(rng.permutation(len(DAMAGE_RENDERERS))[:int(rng.integers(2, 5))])
    for idx in chosen:
        name, render = DAMAGE_RENDERERS[idx]
        mask[render(rng, img, GROUND[material])] = CLASS_ID[name]
    if rng.random() < 0.3:
        _border(rng, img, mask)
    if material == 'photograph':  # film grain over everything, as a scan would show it
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    rgb = np.clip(np.round(np.clip(img, 0, 1) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, content, obj_type


# ------------------------------------------------------------------------------ writing
def _png_bytes(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', array, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError('OpenCV failed to encode a PNG')
    return buf.tobytes()


def _settings(num_images: int, num_val: int, seed: int, size: int) -> dict:
    return dict(generator=GENERATOR_NAME, generator_version=GENERATOR_VERSION,
                num_images=num_images, num_val=num_val, seed=seed, size=size)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_up_to_date(out_dir: Path, num_images: int, num_val: int, seed: int, size: int) -> bool:
    """True if ``out_dir`` holds exactly what these settings generate (settings and file hashes)."""
    meta_path = Path(out_dir) / 'meta.json'
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return False
    if meta.get('settings') != _settings(num_images, num_val, seed, size):
        return False
    files = meta.get('files', {})
    on_disk = {p.relative_to(out_dir).as_posix() for p in Path(out_dir).rglob('*')
               if p.is_file() and p.name != 'meta.json'}
    return on_disk == set(files) and all(
        _sha256(Path(out_dir) / rel) == digest for rel, digest in files.items())


def generate_demo_dataset(out_dir, num_images: int = 50, num_val: int = 10, seed: int = 0,
                          size: int = 256, force: bool = False, progress: bool = True) -> str:
    """Write the demo dataset to ``out_dir``; returns what was done ('written' or 'up to date').

    The dataset is written into a temporary sibling folder and renamed into place at the end,
    so an interrupted run never leaves a complete-looking half dataset. An existing non-empty
    ``out_dir`` is replaced only with ``force=True``, except when it already holds exactly
    what these settings produce (checked by file hashes), which is left as it is.
    """
    out_dir = Path(out_dir)
    if num_images < 2 or not 1 <= num_val < num_images:
        raise ValueError(f'need num_images >= 2 and 1 <= num_val < num_images, '
                         f'got num_images={num_images}, num_val={num_val}')
    if size < 32:
        raise ValueError(f'size must be at least 32 pixels, got {size}')
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f'{out_dir} exists and is not a directory')
    non_empty = out_dir.is_dir() and any(out_dir.iterdir())
    if non_empty and not force:
        if is_up_to_date(out_dir, num_images, num_val, seed, size):
            return 'up to date'
        raise FileExistsError(
            f'{out_dir} already exists and is not empty (and does not hold the demo data for '
            f'these settings). Refusing to overwrite it; pass --force (force=True) to replace '
            f'it, or choose another --out.')

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.partial-', dir=out_dir.parent))
    try:
        files = _write_all(tmp, num_images, num_val, seed, size, progress)
        meta = dict(label_mode_on_disk='full', classes=list(FULL_CLASSES),
                    ignore_index=IGNORE_INDEX, settings=_settings(num_images, num_val, seed, size),
                    files=files)
        (tmp / 'meta.json').write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.old-', dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return 'written'


def _write_all(root: Path, num_images: int, num_val: int, seed: int, size: int,
               progress: bool) -> Dict[str, str]:
    """Render every sample under ``root``; returns {relative path: sha256}."""
    num_train = num_images - num_val
    rows: Dict[str, List[dict]] = {'train': [], 'val': []}
    files: Dict[str, str] = {}
    for split in rows:
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
    (root / 'meta').mkdir()
    train_counts = np.zeros(len(FULL_CLASSES), np.int64)
    for index in tqdm(range(num_images), desc='demo images', disable=not progress):
        split = 'train' if index < num_train else 'val'
        rng = np.random.default_rng([seed, index])
        material = MATERIALS[index % len(MATERIALS)]
        image, mask, content, obj_type = render_sample(rng, size, material)
        sample_id = f'demo_{index:04d}'
        if split == 'train':
            train_counts += np.bincount(mask.ravel(), minlength=256)[:len(FULL_CLASSES)]
        for sub, array in (('img_dir', image), ('ann_dir', mask)):
            rel = f'{sub}/{split}/{sample_id}.png'
            data = _png_bytes(array)
            (root / rel).write_bytes(data)
            files[rel] = hashlib.sha256(data).hexdigest()
        rows[split].append(dict(id=sample_id, material=material, content=content, type=obj_type,
                                source_width=size, source_height=size, transform='none',
                                scale=1.0, tile_x=0, tile_y=0, parent_id=sample_id))
    for split, split_rows in rows.items():
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=META_COLUMNS, lineterminator='\n')
        writer.writeheader()
        writer.writerows(split_rows)
        rel = f'meta/{split}.csv'
        (root / rel).write_text(buf.getvalue())
        files[rel] = hashlib.sha256(buf.getvalue().encode()).hexdigest()
    binary_counts = np.zeros(len(BINARY_CLASSES), np.int64)
    for full_id, count in enumerate(train_counts):
        binary_counts[FULL_TO_BINARY[full_id]] += count
    for rel, counts, classes in (('class_weights.json', train_counts, FULL_CLASSES),
                                 ('class_weights_binary.json', binary_counts, BINARY_CLASSES)):
        text = json.dumps(class_weights_record(counts, classes, 'train'), indent=2,
                          sort_keys=True) + '\n'
        (root / rel).write_text(text)
        files[rel] = hashlib.sha256(text.encode()).hexdigest()
    return files
