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
what the label map records, so masks are exact (``demo_painting``, ``demo_damage``). Only numpy
and OpenCV are used; every image is drawn from its own generator seeded with ``(seed, index)``,
so the output is byte-identical for a given seed and size.
"""
import hashlib
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..datasets import layout
from ..datasets.artefact_classes import FULL_CLASSES
from .class_stats import class_weight_files, histogram
from .demo_damage import DAMAGE_RENDERERS, GROUND, border
from .demo_painting import paint_content, substrate

# recorded in meta.json's settings, which decide whether a folder is up to date: the name
# the folders written so far carry
GENERATOR_NAME = 'artseg_mm.datasets.demo_generator'
GENERATOR_VERSION = 2  # 2: class_weights*.json
DEMO_SPLITS = ('train', 'val')
MATERIALS = ('canvas', 'paper', 'photograph', 'parchment')
# material -> (possible content types, object type)
MATERIAL_CONTENT = {
    'canvas': (('artistic depiction', 'geometric patterns'), 'painting'),
    'paper': (('line art', 'artistic depiction', 'geometric patterns'), 'drawing'),
    'photograph': (('photographic depiction',), 'photograph'),
    'parchment': (('line art', 'artistic depiction'), 'manuscript'),
}
CLASS_ID = {name: idx for idx, name in enumerate(FULL_CLASSES)}


def render_sample(rng: np.random.Generator, size: int,
                  material: str) -> Tuple[np.ndarray, np.ndarray, str, str]:
    """Draw one image. Returns (BGR uint8 image, uint8 mask of FULL ids / 255, content, type)."""
    contents, obj_type = MATERIAL_CONTENT[material]
    content = contents[int(rng.integers(0, len(contents)))]
    img, modulation = substrate(rng, size, material)
    paint_content(rng, img, content, material)
    img *= modulation[..., None]
    mask = np.zeros((size, size), np.uint8)
    # 2-4 damage types per image, each present in about half of the images.
    chosen = sorted(rng.permutation(len(DAMAGE_RENDERERS))[:int(rng.integers(2, 5))])
    for idx in chosen:
        name, render = DAMAGE_RENDERERS[idx]
        mask[render(rng, img, GROUND[material])] = CLASS_ID[name]
    if rng.random() < 0.3:
        border(rng, img, mask)
    if material == 'photograph':  # film grain over everything, as a scan would show it
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    rgb = np.clip(np.round(np.clip(img, 0, 1) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, content, obj_type


def _png_bytes(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', array, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError('OpenCV failed to encode a PNG')
    return buf.tobytes()


def _settings(num_images: int, num_val: int, seed: int, size: int) -> dict:
    return dict(generator=GENERATOR_NAME, generator_version=GENERATOR_VERSION,
                num_images=num_images, num_val=num_val, seed=seed, size=size)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_up_to_date(out_dir: Path, num_images: int, num_val: int, seed: int, size: int) -> bool:
    """True if ``out_dir`` holds exactly what these settings generate (settings and file hashes)."""
    try:
        meta = layout.read_meta(out_dir)
    except ValueError:  # not valid JSON: not what these settings write
        return False
    if meta.get('settings') != _settings(num_images, num_val, seed, size):
        return False
    files = meta.get('files', {})
    on_disk = {p.relative_to(out_dir).as_posix() for p in Path(out_dir).rglob('*')
               if p.is_file() and p.name != layout.META_JSON}
    return on_disk == set(files) and all(
        _sha256((Path(out_dir) / rel).read_bytes()) == digest for rel, digest in files.items())


def generate_demo_dataset(out_dir, num_images: int = 50, num_val: int = 10, seed: int = 0,
                          size: int = 256, force: bool = False, progress: bool = True) -> str:
    """Write the demo dataset to ``out_dir``; returns what was done ('written' or 'up to date').

    The dataset is written into ``<out_dir>.partial`` and renamed into place at the end
    (``layout.written_atomically``), so an interrupted run never leaves a complete-looking
    half dataset. An existing non-empty ``out_dir`` is replaced only with ``force=True``,
    except when it already holds exactly what these settings produce (checked by file
    hashes), which is left as it is.
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

    with layout.written_atomically(out_dir, 'this generator') as tmp:
        files = _write_all(tmp, num_images, num_val, seed, size, progress)
        meta = layout.meta_record('full', settings=_settings(num_images, num_val, seed, size),
                                  files=files)
        layout.write_json(tmp / layout.META_JSON, meta)
    return 'written'


def _write_all(root: Path, num_images: int, num_val: int, seed: int, size: int,
               progress: bool) -> Dict[str, str]:
    """Render every sample under ``root``; returns {relative path: sha256}."""
    num_train = num_images - num_val
    rows: Dict[str, List[dict]] = {split: [] for split in DEMO_SPLITS}
    files: Dict[str, str] = {}
    layout.make_split_folders(root, DEMO_SPLITS)
    train_counts = np.zeros(len(FULL_CLASSES), np.int64)
    for index in tqdm(range(num_images), desc='demo images', disable=not progress):
        split = 'train' if index < num_train else 'val'
        rng = np.random.default_rng([seed, index])
        material = MATERIALS[index % len(MATERIALS)]
        image, mask, content, obj_type = render_sample(rng, size, material)
        sample_id = f'demo_{index:04d}'
        if split == 'train':
            train_counts += histogram(mask)[:len(FULL_CLASSES)]
        for kind, array in ((layout.IMG_DIR, image), (layout.ANN_DIR, mask)):
            rel = layout.sample_file(kind, split, sample_id)
            data = _png_bytes(array)
            (root / rel).write_bytes(data)
            files[rel] = _sha256(data)
        rows[split].append(dict(id=sample_id, material=material, content=content, type=obj_type,
                                source_width=size, source_height=size, transform='none',
                                scale=1.0, tile_x=0, tile_y=0, parent_id=sample_id))
    for split, split_rows in rows.items():
        files[layout.sidecar_file(split)] = _sha256(layout.write_sidecar(root, split, split_rows))
    for name, record in class_weight_files(train_counts, 'full', 'train').items():
        files[name] = _sha256(layout.write_json(root / name, record))
    return files
