"""Class statistics of a data root: pixel counts per class, frequencies and loss weights.

Both writers (converter, demo generator) count the pixels of the masks they write and derive
the same class-weight files from the counts, so a loss reads one format whichever made the
data.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..datasets.artefact_classes import BINARY_CLASSES, FULL_TO_BINARY, IGNORE_INDEX
from ..datasets.layout import CLASS_WEIGHTS_BINARY_JSON, CLASS_WEIGHTS_JSON, CLASSES_ON_DISK


def histogram(mask: np.ndarray, block_pixels: int = 1 << 22) -> np.ndarray:
    """256-bin pixel counts of a uint8 mask, in row blocks: np.bincount
    casts to int64, which for a 133 Mpx mask would cost 1 GB at once."""
    hist = np.zeros(256, dtype=np.int64)
    rows = max(1, block_pixels // max(1, mask.shape[1]))
    for y in range(0, mask.shape[0], rows):
        hist += np.bincount(mask[y:y + rows].ravel(), minlength=256)
    return hist


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


def class_weight_files(counts: Sequence[int], label_mode: str,
                       computed_on: str) -> Dict[str, dict]:
    """``{file name: content}`` of the class-weight files of a root whose masks hold
    ``label_mode`` ids, from the pixels per class of those masks: ``class_weights.json``,
    and for full ids also ``class_weights_binary.json`` (the damage classes summed)."""
    counts = np.asarray(counts, dtype=np.int64)
    files = {CLASS_WEIGHTS_JSON: class_weights_record(counts, CLASSES_ON_DISK[label_mode],
                                                      computed_on)}
    if label_mode == 'full':
        binary = np.zeros(len(BINARY_CLASSES), np.int64)
        for full_id, count in enumerate(counts):
            binary[FULL_TO_BINARY[full_id]] += count
        files[CLASS_WEIGHTS_BINARY_JSON] = class_weights_record(binary, BINARY_CLASSES,
                                                                computed_on)
    return files


def weight_counts(pixels: Dict[str, np.ndarray], n_classes: int) -> Tuple[np.ndarray, str]:
    """The class counts the weights are computed on, and which: the train split's, or every
    split's when train has no labelled pixels. ``pixels``: split -> 256-bin histogram."""
    counts = pixels['train'][:n_classes]
    if counts.sum() > 0:
        return counts, 'train'
    return sum(pixels.values())[:n_classes], 'all splits (train has no labelled pixels)'


def class_pixel_summary(pixels: np.ndarray, classes: Sequence[str]) -> Tuple[dict, dict]:
    """``({class: pixels, 'ignore': pixels}, {class: frequency})`` of one split's
    256-bin histogram; frequencies over the labelled pixels, 0 where there are none."""
    counts = pixels[:len(classes)]
    total = int(counts.sum())
    class_pixels = {c: int(n) for c, n in zip(classes, counts)}
    class_pixels['ignore'] = int(pixels[IGNORE_INDEX])
    class_freq = {c: (round(int(n) / total, 8) if total else 0.0)
                  for c, n in zip(classes, counts)}
    return class_pixels, class_freq
