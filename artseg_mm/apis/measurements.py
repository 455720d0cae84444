"""How much of each damage class a predicted mask holds, in pixels and physical units.

Why it exists: a conservator plans treatment from the extent of the damage: its
area in mm², how many separate regions it forms, and for damage that runs as a
line (scratches, hairs, folds, cracks) its length, which says more than the area
of a line whose width depends on the scan. Areas and lengths in mm need the scan's
:class:`~artseg_mm.datasets.image_resolution.Resolution`; without one they are
None and the record says the scale is unknown, rather than assuming a dpi.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from skimage.morphology import skeletonize

from ..datasets.artefact_classes import CLEAN_ID, IGNORE_INDEX, THIN_CLASSES
from ..datasets.image_resolution import Resolution

# Below this a connected region is more likely a speck of prediction noise than a
# distinct damage, so it is not counted as a region (its pixels still count in the
# area and length).
DEFAULT_MIN_REGION_PX = 16
# How far the polygon replacing the skeleton's pixel chain may stray from it: enough
# to straighten the staircase of a digital line (which makes a pixel count wrong by
# angle), little enough to follow the bends of a hair.
SKELETON_TOLERANCE_PX = 1.0
MM2_PER_CM2 = 100.0
# significant digits kept in a record: far finer than what a mask can measure
RECORD_DIGITS = 6
SCALE_UNKNOWN_NOTE = ('scale unknown: the file declares no physical resolution, so areas '
                      'and lengths are given in pixels only; give it with --dpi')


@dataclass(frozen=True)
class ClassMeasure:
    """One class's extent in a mask. ``regions`` counts the 8-connected regions of
    at least the minimum size; ``largest_region_*`` is the largest region of all.
    ``length_*``: the skeleton length, for thin classes only (None for others).
    Physical values are None when the resolution is unknown."""
    name: str
    class_id: int
    pixels: int
    area_mm2: Optional[float]
    area_cm2: Optional[float]
    regions: int
    largest_region_px: int
    largest_region_mm2: Optional[float]
    length_px: Optional[float] = None
    length_mm: Optional[float] = None

    def as_record(self) -> dict:
        """The JSON-ready form (keyed by the class name elsewhere, so without it);
        the length keys only for thin classes."""
        record = dict(class_id=self.class_id, pixels=self.pixels,
                      area_mm2=_rounded(self.area_mm2), area_cm2=_rounded(self.area_cm2),
                      regions=self.regions, largest_region_px=self.largest_region_px,
                      largest_region_mm2=_rounded(self.largest_region_mm2))
        if self.length_px is not None:
            record.update(length_px=_rounded(self.length_px),
                          length_mm=_rounded(self.length_mm))
        return record


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else float(f'{value:.{RECORD_DIGITS}g}')


def _mm2_per_px(resolution: Optional[Resolution]) -> Optional[float]:
    """The area of one pixel, x and y spacings apart for anisotropic scans."""
    if resolution is None:
        return None
    return 1.0 / (resolution.px_per_mm_x * resolution.px_per_mm_y)


def _class_counts(mask: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The pixel count of each id 0..255 in ``mask``; a clear error for a mask that
    is not a 2-D uint8 class-id map of ``classes``, rather than measuring ids that
    name nothing."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.uint8:
        kind = (f'{mask.dtype} array of shape {mask.shape}' if isinstance(mask, np.ndarray)
                else type(mask).__name__)
        raise ValueError(f'measure_classes needs a 2-D uint8 class-id mask, got a {kind}')
    counts = np.bincount(mask.ravel(), minlength=256)
    unknown = [int(i) for i in np.flatnonzero(counts)
               if i >= len(classes) and i != IGNORE_INDEX]
    if unknown:
        raise ValueError(f'mask holds class ids {unknown} beyond the {len(classes)} '
                         f'classes given ({", ".join(classes)})')
    return counts


def _bounding_crop(class_mask: np.ndarray) -> np.ndarray:
    """The class's pixels cut to their bounding box plus a 1-pixel empty border, so
    labelling and thinning work on the damage rather than on a whole scan, and the
    skeleton never touches the crop's edge."""
    rows = np.flatnonzero(class_mask.any(axis=1))
    cols = np.flatnonzero(class_mask.any(axis=0))
    crop = class_mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return np.pad(crop, 1).astype(np.uint8)


def _region_sizes(crop: np.ndarray) -> np.ndarray:
    """The pixel count of each 8-connected region of the binary ``crop``."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA]  # label 0 is the empty surround


def skeleton_length(crop: np.ndarray,
                    resolution: Optional[Resolution] = None) -> Tuple[float, Optional[float]]:
    """The total length of the skeleton of the binary ``crop``: (pixels, mm or None).

    A skeleton's pixel count gives a 45-degree line as 1/sqrt(2) of its length, and a
    chain code weighting diagonal steps by sqrt(2) still makes a 22.5-degree line
    about 8 % long: a digital line's staircase depends on its angle. Instead the
    outline of the one-pixel-wide skeleton is traced (it runs along every branch
    once each way, and along both sides of a closed loop), simplified to a polygon
    within :data:`SKELETON_TOLERANCE_PX`, and half its length taken. The mm length
    adds up each polygon edge with its own x and y spacing, so anisotropic pixels
    are measured right."""
    skeleton = skeletonize(crop.astype(bool)).astype(np.uint8)
    contours, _ = cv2.findContours(skeleton, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    length_px = length_mm = 0.0
    for contour in contours:
        polygon = cv2.approxPolyDP(contour, SKELETON_TOLERANCE_PX, closed=True)[:, 0, :]
        steps = np.diff(np.vstack([polygon, polygon[:1]]).astype(np.float64), axis=0)
        length_px += float(np.hypot(steps[:, 0], steps[:, 1]).sum())
        if resolution is not None:
            length_mm += float(np.hypot(steps[:, 0] / resolution.px_per_mm_x,
                                        steps[:, 1] / resolution.px_per_mm_y).sum())
    return length_px / 2, (length_mm / 2 if resolution is not None else None)


def _measure_class(class_mask: np.ndarray, class_id: int, name: str, pixels: int,
                   resolution: Optional[Resolution], min_region_px: int,
                   thin: bool) -> ClassMeasure:
    """:class:`ClassMeasure` of one class present in the mask."""
    crop = _bounding_crop(class_mask)
    sizes = _region_sizes(crop)
    largest = int(sizes.max())
    mm2_per_px = _mm2_per_px(resolution)
    area_mm2 = None if mm2_per_px is None else pixels * mm2_per_px
    length_px, length_mm = skeleton_length(crop, resolution) if thin else (None, None)
    return ClassMeasure(
        name=name, class_id=class_id, pixels=pixels, area_mm2=area_mm2,
        area_cm2=None if area_mm2 is None else area_mm2 / MM2_PER_CM2,
        regions=int(np.count_nonzero(sizes >= min_region_px)),
        largest_region_px=largest,
        largest_region_mm2=None if mm2_per_px is None else largest * mm2_per_px,
        length_px=length_px, length_mm=length_mm)


def measure_classes(mask: np.ndarray, classes: Sequence[str],
                    resolution: Optional[Resolution] = None,
                    min_region_px: int = DEFAULT_MIN_REGION_PX,
                    thin_classes: Sequence[str] = THIN_CLASSES) -> Dict[str, ClassMeasure]:
    """The :class:`ClassMeasure` of each class present in the uint8 class-id
    ``mask``, keyed by name, in class-id order. Pixels of :data:`IGNORE_INDEX`
    (outside the artwork) and of the clean class (id 0, 'Clean' in both the full
    and the binary class sets) are not damage and are not measured."""
    counts = _class_counts(mask, classes)
    if int(min_region_px) != min_region_px or min_region_px < 1:
        raise ValueError(f'min_region_px must be a whole number of pixels >= 1, '
                         f'got {min_region_px!r}')
    measures = {}
    for class_id, name in enumerate(classes):
        if class_id == CLEAN_ID or counts[class_id] == 0:
            continue
        measures[name] = _measure_class(mask == class_id, class_id, name,
                                        int(counts[class_id]), resolution,
                                        int(min_region_px), name in thin_classes)
    return measures


def scale_record(resolution: Optional[Resolution]) -> dict:
    """The JSON-ready scale of a report, saying where it came from, or that it is
    unknown (the same keys either way, so readers need no special case)."""
    if resolution is None:
        return dict(known=False, px_per_mm=None, dpi=None, source=None,
                    note=SCALE_UNKNOWN_NOTE)
    return dict(known=True,
                px_per_mm=[_rounded(resolution.px_per_mm_x), _rounded(resolution.px_per_mm_y)],
                dpi=[_rounded(resolution.dpi_x), _rounded(resolution.dpi_y)],
                source=resolution.source, note=resolution.note)


def measurement_record(mask: np.ndarray, classes: Sequence[str],
                       resolution: Optional[Resolution] = None,
                       min_region_px: int = DEFAULT_MIN_REGION_PX,
                       thin_classes: Sequence[str] = THIN_CLASSES) -> dict:
    """The JSON-ready measurements of one image: its scale, the minimum region size
    that ``regions`` counts, and each present class's :meth:`ClassMeasure.as_record`."""
    measures = measure_classes(mask, classes, resolution, min_region_px, thin_classes)
    return dict(scale=scale_record(resolution), min_region_px=int(min_region_px),
                classes={name: measure.as_record() for name, measure in measures.items()})
