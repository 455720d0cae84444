"""What a trained model's data was: images per split and the train split's class shares.

Why it exists: a model handed on without its data root should still say what it
learned from. This reads what the run's config names: each split's dataset (built
as training built it, so fold files and label maps apply), the records the
converter and the demo generator leave in the data root (``summary.json``,
``meta.json``, ``class_weights*.json``, kept as they are), and the class pixel
counts of the train split's masks after the dataset's label map, counted here
because a record may describe another label set or a whole split a fold only
partly uses.
"""
import json
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config, ConfigDict

from . import layout

RECORD_FILES = (layout.SUMMARY_JSON, layout.META_JSON, layout.CLASS_WEIGHTS_JSON,
                layout.CLASS_WEIGHTS_BINARY_JSON)


def split_datasets(cfg: Config) -> dict:
    """``{split: dataset config}`` for the config's train/val/test dataloaders."""
    datasets = {}
    for split in layout.SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('dataset'):
            datasets[split] = loader['dataset']
    if 'train' not in datasets:
        raise ValueError('the config has no train_dataloader.dataset: nothing says what '
                         'the model was trained on')
    return datasets


def describe_split(dataset_cfg: ConfigDict) -> dict:
    """Where a split's images come from, as the config says."""
    return dict(type=dataset_cfg.get('type'), data_root=dataset_cfg.get('data_root'),
                data_prefix=dict(dataset_cfg.get('data_prefix') or {}),
                ann_file=dataset_cfg.get('ann_file') or None,
                label_mode=dataset_cfg.get('label_mode'))


def read_records(data_root: str) -> dict:
    """The converter's / demo generator's JSON records found in ``data_root``."""
    records = {}
    for name in RECORD_FILES:
        path = osp.join(data_root, name)
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                try:
                    records[name] = json.load(f)
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path} is not valid JSON ({error})') from error
    return records


def count_class_pixels(dataset, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Pixels per class over a dataset's masks, read by mmseg's ``LoadAnnotations``
    (label map and ``reduce_zero_label`` applied, as in training)."""
    from mmseg.datasets.transforms import LoadAnnotations
    loader = LoadAnnotations()
    counts = np.zeros(num_classes, np.int64)
    for index in range(len(dataset)):
        info = dict(dataset.get_data_info(index))
        label = loader(info)['gt_seg_map']
        values = label[label != ignore_index]
        bad = np.unique(values[values >= num_classes])
        if bad.size:
            raise ValueError(f"mask {info['seg_map_path']} holds class ids {bad.tolist()} "
                             f'beyond the {num_classes} classes of the dataset')
        counts += np.bincount(values.ravel(), minlength=num_classes)
    return counts


# work dirs followed back through load_from (a fine-tune of a fine-tune of ...)
MAX_START_DEPTH = 4


def started_from(cfg: Config, depth: int = 0) -> Optional[dict]:
    """The weights a run started from (``load_from``) and, where they lie in a
    work dir or model folder on this machine, what that run was trained on.

    Why: a fine-tune inherits what its starting weights learned, so a model
    fine-tuned on a few corrected masks from weights trained on synthetic demo
    images is still a demo model; its card and reports must say so. A work
    dir's config dump is a local file of one's own runs (read as mmseg reads
    it); a model folder's ``data_summary.json`` is data.
    """
    start = cfg.get('load_from')
    if not start:
        return None
    record = dict(weights=str(start))
    folder = osp.dirname(str(start))
    summary = osp.join(folder, 'data_summary.json')
    dumps = sorted(n for n in os.listdir(folder) if n.endswith('.py')) \
        if osp.isdir(folder) else []
    if osp.isfile(summary):
        with open(summary, encoding='utf-8') as f:
            record['data'] = json.load(f)
    elif len(dumps) == 1 and depth < MAX_START_DEPTH:
        parent = Config.fromfile(osp.join(folder, dumps[0]))
        record['data'] = light_data_summary(parent, depth + 1)
    else:
        record['note'] = ('not a work dir or model folder on this machine: what those '
                          'weights were trained on is unknown')
    return record


def light_data_summary(cfg: Config, depth: int = 0) -> dict:
    """What a config says of its training data and the data root's records,
    without a pass over the images, and where its weights started from."""
    try:
        datasets = split_datasets(cfg)
    except ValueError:  # an exported or hand-made config without a train split
        return dict(found=False, note='the config names no training data')
    data_root = datasets['train'].get('data_root')
    data = dict(data_root=data_root,
                splits={split: describe_split(d) for split, d in datasets.items()})
    data['found'] = bool(data_root) and osp.isdir(data_root)
    if data['found']:
        data['records'] = read_records(data_root)
    start = started_from(cfg, depth)
    if start is not None:
        data['started_from'] = start
    return data


def training_data_summary(cfg: Config, ignore_index: int = 255) -> dict:
    """The data a run's config names, as JSON-ready dict.

    Keys: ``data_root``, ``found`` (False when the train data root is not there:
    only the config's description then), ``splits`` (per split: where from,
    ``images``), ``records`` (the data root's JSON records), ``train_class_pixels``
    and ``train_class_share`` (per class, ``ignore_index`` left out).
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    datasets = split_datasets(cfg)
    data_root: Optional[str] = datasets['train'].get('data_root')
    summary = dict(data_root=data_root,
                   splits={split: describe_split(d) for split, d in datasets.items()})
    if data_root is not None and not osp.isdir(data_root):
        summary['found'] = False
        summary['note'] = (f'data root {data_root} not found when the model was packaged '
                           f'(working directory {os.getcwd()})')
        return summary
    summary['found'] = True
    summary['records'] = read_records(data_root) if data_root else {}
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    built = {}
    for split, dataset_cfg in datasets.items():
        built[split] = DATASETS.build(dataset_cfg)
        summary['splits'][split]['images'] = len(built[split])
    classes = list(built['train'].metainfo['classes'])
    counts = count_class_pixels(built['train'], len(classes), ignore_index)
    total = int(counts.sum())
    summary['train_class_pixels'] = {c: int(n) for c, n in zip(classes, counts)}
    summary['train_class_share'] = {c: (float(n) / total if total else 0.0)
                                    for c, n in zip(classes, counts)}
    start = started_from(cfg)
    if start is not None:
        summary['started_from'] = start
    return summary
