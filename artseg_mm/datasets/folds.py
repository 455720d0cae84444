"""Leave-one-group-out folds of an ARTeFACT data root, for generalisation across materials.

ARTeFACT's paper asks how models do on a material (or content type) they never trained on.
A fold holds one group out as its test split and trains on the others; every group is held
out exactly once. The groups come from the ``meta/<split>.csv`` sidecars the converter and
the demo generator write (columns ``id``, ``material``, ``content``). Images of one
``parent_id`` (tiles of one source image) stay in one split, so no picture leaks from train
into test.
"""
import csv
import random
from pathlib import Path
from typing import Dict, List, Tuple

HOLDOUT_KEYS = ('material', 'content')


def read_groups(data_root, key: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """``({image id: value of key}, {image id: parent_id})`` over ``data_root/meta/*.csv``."""
    if key not in HOLDOUT_KEYS:
        raise ValueError(f'holdout key must be one of {HOLDOUT_KEYS}, got {key!r}')
    files = sorted(Path(data_root, 'meta').glob('*.csv'))
    if not files:
        raise FileNotFoundError(f'{data_root}/meta/ holds no <split>.csv sidecar: the '
                                'folds are made from the converter\'s metadata')
    groups: Dict[str, str] = {}
    parents: Dict[str, str] = {}
    for path in files:
        with open(path, newline='', encoding='utf-8') as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                if key not in row or 'id' not in row:
                    raise ValueError(f'{path} has no {key!r} / id column')
                if not row[key]:
                    raise ValueError(f'{path} line {line}: image {row["id"]!r} has no {key}')
                if row['id'] in groups:
                    raise ValueError(f'{path} line {line}: image {row["id"]!r} is listed twice')
                groups[row['id']] = row[key]
                parents[row['id']] = row.get('parent_id') or row['id']
    return groups, parents


def make_folds(groups: Dict[str, str], parents: Dict[str, str], val_fraction: float = 0.15,
               seed: int = 0) -> List[dict]:
    """One fold per group: ``{'holdout': group, 'splits': {train, val, test: [ids]}}``.

    test: the group's images; val: a seeded ``val_fraction`` of the other groups' source
    images (at least one); train: the rest.
    """
    values = sorted(set(groups.values()))
    if len(values) < 2:
        raise ValueError(f'leave-one-out needs at least 2 groups, found {values}')
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    folds = []
    for value in values:
        rest_parents = sorted({parents[i] for i, g in groups.items() if g != value})
        rng = random.Random(f'{seed}-{value}')
        n_val = max(1, round(val_fraction * len(rest_parents)))
        if n_val >= len(rest_parents):
            raise ValueError(f'holding out {value!r} leaves {len(rest_parents)} source '
                             'image(s): too few for a train and a val split')
        val_parents = set(rng.sample(rest_parents, n_val))
        splits = dict(train=[], val=[], test=[])
        for image, group in sorted(groups.items()):
            if group == value:
                splits['test'].append(image)
            elif parents[image] in val_parents:
                splits['val'].append(image)
            else:
                splits['train'].append(image)
        folds.append(dict(holdout=value, splits=splits))
    return folds
