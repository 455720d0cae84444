"""Damage drawn onto a demo image, each layer from a boolean mask that is also its label.

Craquelure and branching cracks, scratches, stains with a tide line, dust specks, material
loss showing the ground, folds, handwriting, and a mount border (labelled ignore). Every layer
is drawn without anti-aliasing, so the mask records exactly the pixels that changed.
"""
from typing import Callable, Tuple

import cv2
import numpy as np

from ..datasets.artefact_classes import IGNORE_INDEX
from .demo_painting import blob, lines_mask, paint, random_walk, smooth_noise


# ------------------------------------------------------------------------------- damage
def _material_loss(rng, img, ground):
    mask = np.zeros(img.shape[:2], bool)
    for _ in range(int(rng.integers(1, 3))):
        mask |= blob(rng, img.shape[0], 0.04 * img.shape[0], 0.12 * img.shape[0])
    paint(img, mask, ground, 0.92)
    return mask


def _staining(rng, img, ground):
    size = img.shape[0]
    mask = blob(rng, size, 0.10 * size, 0.22 * size)
    tint = rng.uniform([0.45, 0.30, 0.10], [0.65, 0.50, 0.30]).astype(np.float32)
    img[mask] = img[mask] * (0.3 + 0.7 * tint)
    rim = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    rim &= mask
    img[rim] *= 0.6
    return mask


def _cracks(rng, img, ground):
    size = img.shape[0]
    if rng.random() < 0.5:  # craquelure: jittered Voronoi cell edges inside a region
        region = blob(rng, size, 0.15 * size, 0.3 * size)
        cell = rng.uniform(0.04, 0.08) * size
        n = max(4, int(region.sum() / cell ** 2))
        ys, xs = np.nonzero(region)
        pick = rng.integers(0, len(ys), n)
        seeds = np.stack([ys[pick], xs[pick]], 1).astype(np.float32)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        yy += 0.3 * cell * (smooth_noise(rng, size, 16) - 0.5)
        xx += 0.3 * cell * (smooth_noise(rng, size, 16) - 0.5)
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
            trunk = random_walk(rng, size, int(rng.integers(15, 30)), size / 40, 0.35)
            lines.append(trunk)
            for _ in range(int(rng.integers(2, 6))):
                start = trunk[int(rng.integers(1, len(trunk)))]
                lines.append(random_walk(rng, size, int(rng.integers(4, 12)), size / 50, 0.5,
                                          start=start))
        mask = lines_mask(size, lines, int(rng.integers(1, 3)))
    paint(img, mask, (0.08, 0.06, 0.05), 0.85)
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
    lines = [random_walk(rng, size, int(rng.integers(10, 25)), size / 20, 0.08)
             for _ in range(int(rng.integers(2, 6)))]
    mask = lines_mask(size, lines, int(rng.integers(1, 3)))
    paint(img, mask, (0.97, 0.97, 0.95), 0.85)
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
    paint(img, mask, ink, 0.9)
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
    paint(img, mask, (0.15, 0.14, 0.13) if rng.random() < 0.6 else (0.98, 0.98, 0.96), 0.8)
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


def border(rng, img, mask) -> None:
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
