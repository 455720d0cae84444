"""Leave-one-group-out folds of an ARTeFACT data root, for generalisation across materials.

ARTeFACT's paper asks how models do on a material (or content type) they never trained on.
A fold holds one group out as its test split and trains on the others; every group is held
out exactly once. The groups come from the root's sidecars (``meta/<split>.csv``, columns
``id``, ``material``, ``content``). Images of one ``parent_id`` (tiles of one source image)
stay in one split, so no picture leaks from train into test.

A fold is written as mmseg split files (``ann_file``, see ``datasets.layout``): one line
``<split folder>/<id>`` per image, relative to the data root's ``img_dir/`` and ``ann_dir/``,
so mmseg's own dataset loading reads it; the folds index names the held-out group of each
fold, and :func:`fold_of_split_file` reads it back.
"""
import json
import os.path as osp
import random
import re
from pathlib import Path
from typing import Dict, List, NamedTuple

from ..datasets import layout

HOLDOUT_KEYS = ('material', 'content')


class FoldSource(NamedTuple):
    """Per image id: its group, its source image and the split folder it lies in."""
    groups: Dict[str, str]
    parents: Dict[str, str]
    folders: Dict[str, str]


def read_groups(data_root, key: str) -> FoldSource:
    """The ``key`` value, ``parent_id`` and split folder of each image of ``data_root``."""
    if key not in HOLDOUT_KEYS:
        raise ValueError(f'holdout key must be one of {HOLDOUT_KEYS}, got {key!r}')
    files = layout.sidecar_files(data_root)
    if not files:
        raise FileNotFoundError(f'{data_root}/{layout.META_DIR}/ holds no <split>.csv sidecar: '
                                'the folds are made from the converter\'s metadata')
    source = FoldSource({}, {}, {})
    for path in files:
        for line, row in layout.read_sidecar_rows(path):
            if key not in row:
                raise ValueError(f'{path} has no {key!r} column')
            if not row[key]:
                raise ValueError(f'{path} line {line}: image {row["id"]!r} has no {key}')
            if row['id'] in source.groups:
                raise ValueError(f'{path} line {line}: image {row["id"]!r} is listed twice')
            source.groups[row['id']] = row[key]
            source.parents[row['id']] = row.get('parent_id') or row['id']
            source.folders[row['id']] = path.stem
    return source


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


def fold_name(key: str, group: str) -> str:
    """A file-system-safe fold name, e.g. ``material_canvas``."""
    return f"{key}_{re.sub(r'[^A-Za-z0-9]+', '_', group).strip('_')}"


def write_folds(out, key: str, folds: List[dict], folders: Dict[str, str],
                **index_info) -> List[dict]:
    """Write each fold's split files and the folds index; return the index entries."""
    out = Path(out)
    index = []
    for fold in folds:
        name = fold_name(key, fold['holdout'])
        if any(entry['name'] == name for entry in index):
            raise ValueError(f'groups {fold["holdout"]!r} and another one both give the '
                             f'fold name {name!r}')
        (out / name).mkdir(parents=True, exist_ok=True)
        for split in layout.SPLITS:
            lines = [layout.split_file_line(folders[image], image) + '\n'
                     for image in fold['splits'][split]]
            layout.fold_split_file(out, name, split).write_text(''.join(lines))
        index.append(dict(name=name, holdout=fold['holdout'],
                          **{split: len(fold['splits'][split]) for split in layout.SPLITS}))
    (out / layout.FOLDS_INDEX).write_text(json.dumps(
        dict(holdout_key=key, folds=index, **index_info), indent=2) + '\n')
    return index


def fold_of_split_file(ann_file: str) -> Dict[str, str]:
    """``{'key', 'group', 'name'}`` of the fold whose split file ``ann_file`` is.

    The fold is read from the folds index that :func:`write_folds` puts next to the fold
    folders (``<out>/<fold>/<split>.txt``).
    """
    fold_dir = osp.dirname(osp.abspath(ann_file))
    index_path = osp.join(osp.dirname(fold_dir), layout.FOLDS_INDEX)
    if not osp.isfile(index_path):
        raise FileNotFoundError(
            f'{ann_file} is not a split file of tools/misc/make_folds.py: there is no '
            f'{index_path} next to its fold folder')
    with open(index_path, encoding='utf-8') as f:
        index = json.load(f)
    name = osp.basename(fold_dir)
    for entry in index.get('folds', []):
        if entry['name'] == name:
            return dict(key=index['holdout_key'], group=entry['holdout'], name=name)
    raise ValueError(f'{index_path} lists no fold {name!r} (the folder of {ann_file})')
