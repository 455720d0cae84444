"""The train/val split of the imported images.

Why it exists: fine-tuning on corrections needs images held out to check it on, and the
split must be reproducible (the same seed and images give the same split, whatever order
the tool exported them in) or chosen by the user by name.
"""
import random
from typing import Dict, Optional, Sequence

from .annotated import listed
from .errors import ImportUsageError

IMPORT_SPLITS = ('train', 'val')
DEFAULT_VAL_FRACTION = 0.2


def split_samples(ids: Sequence[str], seed: int = 0,
                  val_fraction: float = DEFAULT_VAL_FRACTION,
                  val: Optional[Sequence[str]] = None,
                  names: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Sample id -> 'train' or 'val': the ``val`` images (ids or image paths relative to
    the images folder, via ``names``: path -> id), else a ``val_fraction`` drawn from the
    sorted ids shuffled with ``seed`` (so the split depends on the seed and the set of
    images only), with at least one image in each split when there are two or more."""
    ids = sorted(ids)
    if val is not None:
        known = dict(names or {}, **{i: i for i in ids})
        unknown = [v for v in val if v not in known]
        if unknown:
            raise ImportUsageError(f'--val names images that are not imported: {unknown} '
                                   f'(imported: {listed(ids)})')
        chosen = {known[v] for v in val}
        if len(chosen) == len(ids):
            raise ImportUsageError('--val names every imported image: none is left to '
                                   'train on')
    else:
        check_val_fraction(val_fraction)
        count = int(round(val_fraction * len(ids)))
        if len(ids) >= 2:
            count = min(max(count, 1), len(ids) - 1)
        shuffled = list(ids)
        random.Random(seed).shuffle(shuffled)
        chosen = set(shuffled[:count])
    return {i: ('val' if i in chosen else 'train') for i in ids}


def check_val_fraction(val_fraction: float) -> None:
    """Refuse a validation share outside [0, 1): all images held out leaves none to train."""
    if not 0 <= val_fraction < 1:
        raise ImportUsageError(f'--val-fraction must be in [0, 1), got {val_fraction}')
