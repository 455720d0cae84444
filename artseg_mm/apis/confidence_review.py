"""Where a conservator should look first: predicted damage the model is unsure of.

Why it exists: every pixel of a mask is a hard class, but the model's top-class
probability (the confidence map of :func:`artseg_mm.apis.scan_inference.predict_scan`,
``value / 255`` = probability) tells sure damage from a guess. Per image this
gives the share of damage pixels below a threshold and the largest connected
regions of such pixels, the "review first" list of the report.
"""
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..datasets.artefact_classes import CLEAN_ID, IGNORE_INDEX

DEFAULT_THRESHOLD = 0.6  # top-class probability below which a damage pixel is "unsure"
REVIEW_FIRST = 5         # regions listed per image


def low_confidence_review(mask: np.ndarray, confidence: np.ndarray, classes: Sequence[str],
                          threshold: float = DEFAULT_THRESHOLD, top: int = REVIEW_FIRST,
                          px_per_mm: Optional[Sequence[float]] = None) -> dict:
    """The unsure damage of one image.

    Args:
        mask: H x W uint8 class ids (``IGNORE_INDEX`` = not segmented).
        confidence: H x W uint8, ``round(255 * top-class probability)``.
        classes: class names by id (id ``CLEAN_ID`` is no damage).
        threshold: top-class probability below which a pixel counts as unsure.
        top: how many regions to list.
        px_per_mm: ``(x, y)`` pixels per mm, to give region areas in mm^2.

    Returns:
        ``threshold``, ``damage_pixels``, ``low_confidence_pixels``,
        ``low_confidence_share`` (of the damage pixels; None without damage) and
        ``review_first``: the ``top`` largest 8-connected regions of unsure damage,
        largest first, each with its bounding box (x, y, width, height), pixels,
        area in mm^2 (None without a scale), mean confidence and the class most of
        it is predicted as.
    """
    if mask.shape != confidence.shape:
        raise ValueError(f'confidence map {confidence.shape} does not match the mask '
                         f'{mask.shape}')
    if not 0 < threshold < 1:
        raise ValueError(f'confidence threshold must be between 0 and 1, got {threshold}')
    damage = (mask != CLEAN_ID) & (mask != IGNORE_INDEX)
    unsure = damage & (confidence < round(255 * threshold))
    damage_pixels, unsure_pixels = int(damage.sum()), int(unsure.sum())
    regions: List[dict] = []
    if unsure_pixels:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            unsure.view(np.uint8), connectivity=8)
        order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind='stable')[:top] + 1
        mm2 = (1.0 / (px_per_mm[0] * px_per_mm[1])) if px_per_mm else None
        for label in order:
            x, y, w, h, area = (int(v) for v in stats[label])
            inside = labels[y:y + h, x:x + w] == label
            ids = mask[y:y + h, x:x + w][inside]
            regions.append(dict(
                x=x, y=y, width=w, height=h, pixels=area,
                area_mm2=area * mm2 if mm2 else None,
                mean_confidence=float(confidence[y:y + h, x:x + w][inside].mean()) / 255,
                predicted=classes[int(np.bincount(ids).argmax())]))
    return dict(threshold=threshold, damage_pixels=damage_pixels,
                low_confidence_pixels=unsure_pixels,
                low_confidence_share=(unsure_pixels / damage_pixels if damage_pixels
                                      else None),
                review_first=regions)
