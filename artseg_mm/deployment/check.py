"""Compare an exported file with the PyTorch model it came from, on one image.

Why it exists: an exporter can succeed and still write a graph that is wrong
at other sizes (a shape baked in where the model computes it) or numerically
off. The check runs the exported file and the PyTorch segmentor on the same
normalised windows of an image (a batch at the window size and, for a dynamic
export, one window of another size and batch) and measures the largest logit
difference and the share of pixels whose predicted class differs.
"""
import glob
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..apis.scan_inference import class_ids, segmentor_window_model
from ..models.segmentors import slide_windows
from .runtime import ExportedSegmentor

# largest share of pixels (percent) whose class may differ: exported graphs
# sum in another order (and ONNX pools by matrices), so near-tied logits flip
MAX_CHANGED_PERCENT = 0.1


@dataclass
class CheckResult:
    """Differences between exported and PyTorch logits over the checked inputs."""
    shapes: List[Tuple[int, int, int]] = field(default_factory=list)  # (N, H, W) each
    max_abs_diff: float = 0.0
    max_abs_logit: float = 0.0
    changed_pixels: int = 0
    pixels: int = 0
    finite: bool = True

    @property
    def changed_percent(self) -> float:
        return 100.0 * self.changed_pixels / max(self.pixels, 1)

    def passed(self, max_changed_percent: float = MAX_CHANGED_PERCENT) -> bool:
        return self.finite and self.changed_percent <= max_changed_percent


def _covering(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """``image`` repeated (wrapped) to at least h x w."""
    pad_h, pad_w = max(h - image.shape[0], 0), max(w - image.shape[1], 0)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode='wrap')
    return image


def check_windows(image: np.ndarray, size: Tuple[int, int], batch: int,
                  dynamic: bool) -> List[List[np.ndarray]]:
    """uint8 windows to check, as batches: up to ``batch`` (at least 2)
    windows of ``size`` tiling the image, and for a dynamic export one window
    of 3/4 the height and 5/4 the width."""
    h, w = size
    batches = []
    cover = _covering(image, h, w)
    boxes = slide_windows(cover.shape[0], cover.shape[1], (h, w), (h, w))
    while len(boxes) < 2:
        boxes = boxes * 2
    batches.append([cover[y1:y2, x1:x2] for y1, y2, x1, x2 in boxes[:max(batch, 2)]])
    if dynamic:
        other = (max(32, h * 3 // 4), w * 5 // 4)
        cover = _covering(image, *other)
        batches.append([cover[:other[0], :other[1]]])
    return batches


@torch.no_grad()
def compare_exported(model: nn.Module, exported: ExportedSegmentor,
                     image: np.ndarray) -> CheckResult:
    """Run ``exported`` and the PyTorch ``model`` on windows of ``image``
    (H x W x 3 uint8, as the config's loader gives it) and compare."""
    from .export import window_size
    reference = segmentor_window_model(model)
    candidate = exported.window_model()
    size = exported.fixed_size or window_size(model)
    batch = int(reference.test_cfg.get('batch_size', 1))
    result = CheckResult()
    for windows in check_windows(image, size, batch, exported.fixed_size is None):
        inputs = torch.stack([reference.to_input(w) for w in windows])
        expected = reference.forward(inputs).float().cpu()
        got = candidate.forward(inputs.cpu()).float()
        if got.shape != expected.shape:
            raise ValueError(f'{exported.path}: logits of shape {tuple(got.shape)} for '
                             f'input {tuple(inputs.shape)}; PyTorch gives '
                             f'{tuple(expected.shape)}')
        result.shapes.append((inputs.shape[0], inputs.shape[2], inputs.shape[3]))
        result.finite &= bool(torch.isfinite(got).all())
        result.max_abs_diff = max(result.max_abs_diff, (got - expected).abs().max().item())
        result.max_abs_logit = max(result.max_abs_logit, expected.abs().max().item())
        for ours, theirs in zip(got, expected):
            changed = class_ids(ours, reference.threshold) != class_ids(
                theirs, reference.threshold)
            result.changed_pixels += int(changed.sum())
            result.pixels += changed.numel()
    return result


def default_check_image(cfg) -> Tuple[np.ndarray, str]:
    """The first image of the config's test split, read by its loader; else a
    synthetic 256 x 256 artwork. Returns (image, what it is)."""
    from ..apis.inferencer import image_loader
    from ..data_prep.demo_generator import render_sample
    dataset = (cfg.get('test_dataloader') or {}).get('dataset', {})
    folder = osp.join(dataset.get('data_root') or '',
                      (dataset.get('data_prefix') or {}).get('img_path', ''))
    suffix = dataset.get('img_suffix', '.png')
    found = sorted(glob.glob(osp.join(folder, '*' + suffix))) if osp.isdir(folder) else []
    if found:
        return image_loader(cfg)(found[0]), found[0]
    image = render_sample(np.random.default_rng(0), 256, 'canvas')[0]  # BGR, as the loader's
    return image, f'a synthetic 256x256 image (no {suffix} test images in {folder})'


def load_check_image(cfg, path: Optional[str]) -> Tuple[np.ndarray, str]:
    """``path`` read by the config's loader, or :func:`default_check_image`."""
    if path is None:
        return default_check_image(cfg)
    from ..apis.inferencer import image_loader
    if not osp.isfile(path):
        raise FileNotFoundError(f'check image {path}: no such file')
    return image_loader(cfg)(path), path
