"""The one way class colours are drawn over an image, in every picture the
project makes (infer's overlays, the comparison's grid)."""
from typing import Optional, Sequence

import cv2
import numpy as np

IMAGE_WEIGHT = 0.45  # the image shows through the colour
IGNORED_GREY = 128


def blend_classes(image: np.ndarray, ids: np.ndarray, colours: Sequence[Sequence[int]],
                  ignored: Optional[np.ndarray] = None) -> np.ndarray:
    """``image`` (H x W x 3 uint8) with each pixel's class colour blended over it.

    ``colours[id]`` is in the image's channel order. A class drawn in black
    (Clean in the ARTeFACT palettes) leaves its pixels as they are, so damage
    stands out; ids without a colour (the ignore id 255) are left too.
    ``ignored`` (bool H x W) pixels are greyed instead, in every panel alike.
    """
    lut = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    known = ids < len(lut)
    safe_ids = np.where(known, ids, 0)
    painted = known & lut[safe_ids].any(axis=-1)
    if ignored is not None:
        painted &= ~ignored
    mixed = cv2.addWeighted(image, IMAGE_WEIGHT, lut[safe_ids], 1 - IMAGE_WEIGHT, 0)
    out = image.copy()
    out[painted] = mixed[painted]
    if ignored is not None and ignored.any():
        grey = np.full_like(image, IGNORED_GREY)
        out[ignored] = cv2.addWeighted(image, 0.35, grey, 0.65, 0)[ignored]
    return out


def outline_classes(image: np.ndarray, ids: np.ndarray, colours: Sequence[Sequence[int]],
                    thickness: int = 1) -> np.ndarray:
    """``image`` with the border of every painted class region drawn over it: a
    dark line with a light one inside, so it shows on red, dark and light subjects
    alike, where a fill in the class colour alone can vanish (red on red)."""
    lut = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    out = image.copy()
    for class_id in np.unique(ids):
        if class_id >= len(lut) or not lut[class_id].any():
            continue  # unpainted (Clean) and ids without a colour (ignore)
        region = (ids == class_id).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.drawContours(out, contours, -1, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
