"""The artwork of a demo image, before any damage: drawing primitives, the support
(canvas weave, paper fibres, photographic grain, parchment mottling) and the depicted content
(gradients, brush strokes, shapes, line work).

Only numpy and OpenCV are used, every random draw from the generator passed in, so an image
depends only on its generator's seed.
"""
from typing import List, Optional, Tuple

import cv2
import numpy as np


# ----------------------------------------------------------------------------- helpers
def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1] of shape (size, size): bicubic upsampling of a coarse grid."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def blob(rng: np.random.Generator, size: int, rmin: float, rmax: float) -> np.ndarray:
    """Irregular filled blob (bool mask) around a random centre with radius in [rmin, rmax]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(0.1 * size, 0.9 * size, 2)
    radius = rng.uniform(rmin, rmax)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / radius
    wobble = smooth_noise(rng, size, int(rng.integers(4, 9)))
    return dist + 0.6 * (wobble - 0.5) < 1.0


def random_walk(rng: np.random.Generator, size: int, steps: int, step_len: float,
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


def paint(img: np.ndarray, mask: np.ndarray, colour, alpha: float) -> None:
    """Blend ``colour`` into ``img`` where ``mask`` is true, in place."""
    img[mask] = (1 - alpha) * img[mask] + alpha * np.asarray(colour, np.float32)


def lines_mask(size: int, polylines: List[np.ndarray], thickness: int) -> np.ndarray:
    """Bool mask of polylines drawn without anti-aliasing (so mask == drawn pixels)."""
    layer = np.zeros((size, size), np.uint8)
    cv2.polylines(layer, polylines, False, 255, thickness=thickness, lineType=cv2.LINE_8)
    return layer > 0


# ---------------------------------------------------------------------------- substrate
def substrate(rng: np.random.Generator, size: int, material: str) -> Tuple[np.ndarray, np.ndarray]:
    """(base colour image, luminance modulation) of the support; both float32 in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if material == 'canvas':
        period = rng.uniform(3.0, 5.0)
        weave = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        modulation = 1.0 + 0.07 * weave + 0.04 * (smooth_noise(rng, size, 24) - 0.5)
        base = np.array([0.82, 0.76, 0.64], np.float32)
    elif material == 'paper':
        fibres = np.zeros((size, size), np.float32)
        for _ in range(size // 2):
            line = random_walk(rng, size, 6, rng.uniform(2, 5), 0.3)
            cv2.polylines(fibres, [line], False, float(rng.uniform(-1, 1)), 1, cv2.LINE_8)
        fibres = cv2.GaussianBlur(fibres, (3, 3), 0)
        modulation = 1.0 + 0.04 * fibres + 0.06 * (smooth_noise(rng, size, 8) - 0.5)
        base = np.array([0.93, 0.91, 0.85], np.float32)
    elif material == 'photograph':
        modulation = 1.0 + rng.normal(0, 0.03, (size, size)).astype(np.float32)
        base = np.array([0.80, 0.72, 0.58], np.float32)
    else:  # parchment
        modulation = 1.0 + 0.18 * (smooth_noise(rng, size, 6) - 0.5) \
            + 0.05 * (smooth_noise(rng, size, 32) - 0.5)
        base = np.array([0.86, 0.76, 0.57], np.float32)
    img = np.broadcast_to(base, (size, size, 3)).copy()
    return img, modulation.astype(np.float32)


# ------------------------------------------------------------------------------ content
def paint_content(rng: np.random.Generator, img: np.ndarray, content: str, material: str) -> None:
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
            paint(img, layer > 0, rng.uniform(0.1, 0.95, 3), 0.8)
        for _ in range(int(rng.integers(8, 20))):
            stroke = random_walk(rng, size, int(rng.integers(4, 10)), size / 24, 0.35)
            thick = max(2, int(rng.uniform(0.015, 0.05) * size))
            paint(img, lines_mask(size, [stroke], thick), rng.uniform(0.1, 0.95, 3), 0.7)
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
            paint(img, lines_mask(size, [curve], 1), ink, 0.55)
    elif content == 'photographic depiction':
        tone = 0.35 + 0.5 * smooth_noise(rng, size, int(rng.integers(3, 6)))
        for _ in range(int(rng.integers(1, 4))):
            tone = np.where(blob(rng, size, 0.1 * size, 0.3 * size),
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
                paint(img, layer > 0, colours[idx], 0.75)
