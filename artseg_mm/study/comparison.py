"""Compare trained runs: work dirs -> runs -> predictions, pooled intervals, paired tests.

Each work dir is what mmengine's Runner writes for one training run (config
dump, checkpoints, ``*/vis_data/scalars.json``). :func:`evaluate_run` rebuilds
the model through :func:`artseg_mm.apis.init_model`, predicts the config's test
split and keeps the per-image confusions :class:`ArtSegMetric` computes (or takes
them, and the masks, from the run's ``tools/test.py`` results of the same
checkpoint, ``<work dir>/test/``, timing only a few images); runs of
one model that differ only by seed are pooled (:func:`group_runs`), anything
else is refused. :mod:`artseg_mm.study.report` writes the tables and figures.
"""
import copy
import glob
import itertools
import json
import math
import os.path as osp
import re
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config

from ..apis import find_config_dump, init_model
from ..apis.model_card import describe_encoder
from ..datasets.artefact_classes import DAMAGE_CLASS_INDEX_BINARY
from ..data_prep.folds import fold_of_split_file
from ..evaluation import (ArtSegMetric, checked_per_image, class_iou, holm_adjust,
                          load_per_image, mean_iou, metrics_from_confusion, model_interval,
                          paired_test, per_class_intervals)
from ..evaluation.statistics import CHECKPOINT_LEVEL, unreliable_note
from ..evaluation.artseg_metric import is_binary_damage
from ..evaluation.cross_fold import summarize_folds, write_fold_report
from ..checkpoints.selection import find_test_checkpoint
from .flops import count_flops

SEED_SUFFIX = re.compile(r'_seed\d+$')
# a run's tools/test.py results, as `make evaluate-*` writes them: tables from
# --work-dir <work dir>/test, masks from --out <work dir>/test/masks
TEST_RESULTS = 'test'
TIMED_IMAGES = 3  # images timed when the predictions come from the test results
# the statistics compared: mIoU always, the damage class's IoU for binary labels
STATS = dict(mIoU=mean_iou, damage_IoU=class_iou(DAMAGE_CLASS_INDEX_BINARY))


@dataclass
class ComparisonOptions:
    """How runs are compared and drawn (the flags of ``tools/analysis_tools/compare.py``)."""
    out: str
    images: int = 4
    show_images: Optional[Sequence[str]] = None
    n_boot: int = 10000
    alpha: float = 0.05
    seed: int = 0
    device: str = 'cpu'
    no_flops: bool = False
    grid_size: int = 384
    allow_unlike: bool = False
    # the settings the compared runs differ in besides the model (allow_unlike)
    unlike: Sequence[str] = ()


@dataclass
class Run:
    """One training run (work dir) and what was measured on it."""
    work_dir: str
    config_path: str
    cfg: Config
    checkpoint: str
    name: str = ''
    model: str = ''
    seed: Optional[int] = None
    per_image: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    preds: Dict[str, np.ndarray] = field(default_factory=dict)


def load_runs(work_dirs: List[str], cfg_options: Optional[dict]) -> List[Run]:
    """Config dump, checkpoint, model name and seed of each work dir (all checked first)."""
    runs = []
    for work_dir in work_dirs:
        config_path = find_config_dump(work_dir)
        checkpoint = find_test_checkpoint(work_dir)  # clear error when there is none
        cfg = Config.fromfile(config_path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        stem = osp.splitext(osp.basename(config_path))[0]
        seed = (cfg.get('randomness') or {}).get('seed')
        runs.append(Run(work_dir=work_dir, config_path=config_path, cfg=cfg,
                        checkpoint=checkpoint, model=SEED_SUFFIX.sub('', stem), seed=seed))
    names = [osp.basename(osp.normpath(run.work_dir)) for run in runs]
    for idx, run in enumerate(runs):
        run.name = names[idx] if names.count(names[idx]) == 1 else f'{names[idx]}_{idx}'
    return runs


def build_dataset(cfg: Config):
    """The dataset of the config's test_dataloader (the val split in our configs)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))



def training_time(work_dir: str) -> Dict[str, Optional[float]]:
    """Training time from the Runner's scalar logs of every (resumed) session.

    Training lines carry ``time`` (seconds per iteration, averaged over the
    logging window) and ``step`` (global iteration); the total is the sum of
    ``time`` x iterations since the previous logged step. When a resumed
    session logs a step again, its line replaces the older one. Validation
    time is not included.
    """
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    by_step: Dict[int, float] = {}
    for path in paths:
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path} line {number} is not JSON: {error}') from error
                if 'loss' in entry and 'time' in entry and 'step' in entry:
                    by_step[int(entry['step'])] = float(entry['time'])
    if not by_step:
        return dict(total_s=None, s_per_iter=None, iters=None,
                    reason=f'no training lines in {work_dir}/*/vis_data/scalars.json')
    total, previous = 0., 0
    for step in sorted(by_step):
        total += by_step[step] * (step - previous)
        previous = step
    return dict(total_s=total, s_per_iter=statistics.median(by_step.values()),
                iters=max(by_step), reason='')


def downsize(array: np.ndarray, longest: int) -> np.ndarray:
    """Nearest-neighbour resize so the longest side is at most ``longest``."""
    import cv2
    height, width = array.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST)


def image_id(img_path: str) -> str:
    return osp.splitext(osp.basename(img_path))[0]


def find_test_results(run: Run, dataset) -> Tuple[Optional[dict], Optional[str], str]:
    """``(per_image, mask folder, '')`` from the run's ``tools/test.py`` results in
    ``<work dir>/test/`` (tables from ``--work-dir``, masks from ``--out .../masks``,
    as ``make evaluate-*`` writes them), or ``(None, None, reason)`` unless they were
    computed with this run's checkpoint on the same images and classes."""
    folder = osp.join(run.work_dir, TEST_RESULTS)
    tables = [osp.join(folder, name) for name in ('metrics.json', 'per_image.json')]
    masks = osp.join(folder, 'masks')
    if not all(osp.isfile(path) for path in tables) or not osp.isdir(masks):
        return None, None, f'no test results (metrics.json, per_image.json, masks/) in {folder}'
    with open(tables[0], encoding='utf-8') as f:
        tested = json.load(f).get('checkpoint')
    if not tested or not osp.isfile(tested) or not osp.samefile(tested, run.checkpoint):
        return None, None, f'{tables[0]} is of checkpoint {tested}, not {run.checkpoint}'
    per_image = load_per_image(tables[1])
    ids = [image_id(dataset.get_data_info(i)['img_path']) for i in range(len(dataset))]
    if [image_id(image['img_path']) for image in per_image['images']] != ids:
        return None, None, f'{tables[1]} holds other images than the test split'
    if list(per_image['classes']) != list(dataset.metainfo['classes']):
        return None, None, f'{tables[1]} has classes {per_image["classes"]}'
    missing = [i for i in ids if not osp.isfile(osp.join(masks, f'{i}.png'))]
    if missing:
        return None, None, f'{masks} lacks {len(missing)} masks (e.g. {missing[0]}.png)'
    return per_image, masks, ''


def _keep_image(keep: dict, key: str, img_path: str, gt: np.ndarray, size: int) -> None:
    """Each test image (RGB) and its ground truth at grid size, once for all runs."""
    import mmcv
    if key not in keep:
        image = mmcv.imread(img_path, channel_order='rgb')
        keep[key] = (downsize(image, size), downsize(gt, size))


def _timed_predictions(model, dataset, indices, device: str):
    """``(index, data batch, outputs, seconds)`` for each index; a first call, not
    timed, pays the one-off costs."""
    from mmengine.dataset import pseudo_collate
    cuda = str(device).startswith('cuda')
    with torch.no_grad():
        model.test_step(pseudo_collate([dataset[0]]))
        for idx in indices:
            batch = pseudo_collate([dataset[idx]])
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs = model.test_step(batch)
            if cuda:
                torch.cuda.synchronize()
            yield idx, batch, outputs, time.perf_counter() - start


def evaluate_run(run: Run, options: ComparisonOptions, keep: dict) -> None:
    """Predict the test split, time it, and write the run's per-image results.

    ``keep`` collects, once for all runs, each image (RGB) and ground truth at
    grid size; the run's own predictions at grid size go to ``run.preds``. Where
    the run's ``tools/test.py`` results belong to its checkpoint
    (:func:`find_test_results`) they are used, and only ``TIMED_IMAGES`` images
    are predicted, for the time per image.
    """
    import cv2
    from tqdm import tqdm

    model = init_model(run.cfg, run.checkpoint, device=options.device)
    dataset = build_dataset(run.cfg)
    out_dir = osp.join(options.out, 'runs', run.name)
    metric = ArtSegMetric(bootstrap=False, table_dir=out_dir, checkpoint=run.checkpoint)
    metric.dataset_meta = dataset.metainfo
    per_image, masks, reason = find_test_results(run, dataset)
    print(f'{run.name}: ' + (f'using the test results in {osp.dirname(masks)}' if masks
                             else f'predicting the test split ({reason})'))
    indices = range(min(TIMED_IMAGES, len(dataset))) if masks else range(len(dataset))
    times = []
    for idx, batch, outputs, seconds in tqdm(
            _timed_predictions(model, dataset, indices, options.device), total=len(indices),
            desc=f'{run.name}: ' + ('timing' if masks else 'predicting'), unit='img'):
        times.append(seconds)
        if masks:
            continue
        metric.process(batch, outputs)
        sample = outputs[0]
        key = image_id(sample.img_path)
        run.preds[key] = downsize(
            sample.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.uint8), options.grid_size)
        _keep_image(keep, key, sample.img_path,
                    sample.gt_sem_seg.data.squeeze(0).cpu().numpy().astype(np.uint8),
                    options.grid_size)
    if masks:
        for idx in range(len(dataset)):
            sample = dataset[idx]['data_samples']
            key = image_id(sample.img_path)
            mask = cv2.imread(osp.join(masks, f'{key}.png'), cv2.IMREAD_UNCHANGED)
            run.preds[key] = downsize(mask, options.grid_size)
            _keep_image(keep, key, sample.img_path,
                        sample.gt_sem_seg.data[0].numpy().astype(np.uint8), options.grid_size)
        metric.results = [dict(confusion=conf, img_path=image['img_path'],
                               **{k: image.get(k) for k in metric.group_keys})
                          for image, conf in zip(per_image['images'], per_image['confusions'])]
    metric.compute_metrics(metric.results)
    run.per_image = checked_per_image(metric.per_image_record(metric.results), out_dir)
    run.stats = dict(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        infer_s=statistics.median(times), timed_images=len(times),
        palette=dataset.metainfo.get('palette'))
    if options.no_flops:
        run.stats.update(gflops=None, flops_note='skipped (--no-flops)')
    else:
        gflops, reason = count_flops(model, run.cfg, options.device)
        run.stats.update(gflops=gflops, flops_note=reason)
    run.stats.update(training=training_time(run.work_dir))
    del model


# --------------------------------------------------------------------- statistics

def check_same_images(runs: List[Run]) -> None:
    """All runs must have predicted the same images (by id, in order), same classes."""
    first = runs[0]
    ref_ids = [image_id(image['img_path']) for image in first.per_image['images']]
    for run in runs[1:]:
        if run.per_image['classes'] != first.per_image['classes']:
            raise ValueError(f'{run.work_dir} has classes {run.per_image["classes"]}, '
                             f'{first.work_dir} has {first.per_image["classes"]}: only '
                             'models of the same label set can be compared')
        ids = [image_id(image['img_path']) for image in run.per_image['images']]
        if ids != ref_ids:
            raise ValueError(f'{run.work_dir} and {first.work_dir} were evaluated on '
                             f'different images ({len(ids)} vs {len(ref_ids)}; ids in one '
                             f'only: {sorted(set(ids) ^ set(ref_ids))[:5]}); use the same '
                             'test split (see --cfg-options)')


# keys of a config dump that may differ between runs of one experiment: the seed
# (what the runs of one model vary), where it was written, how it was launched
POOLABLE_KEYS = ('randomness.seed', 'work_dir', 'launcher', 'resume')


def flat_settings(cfg: Config) -> Dict[str, object]:
    """A config as ``{dotted key: value}`` (list items as ``key.<i>``)."""
    flat: Dict[str, object] = {}

    def walk(value, prefix):
        if isinstance(value, dict):
            for key in value:
                walk(value[key], f'{prefix}.{key}' if prefix else str(key))
        elif isinstance(value, (list, tuple)):
            for idx, item in enumerate(value):
                walk(item, f'{prefix}.{idx}')
            if not value:
                flat[prefix] = type(value)()
        else:
            flat[prefix] = value

    walk(cfg.to_dict(), '')
    return flat


def setting_differences(a: Config, b: Config, allowed: Tuple[str, ...] = ()) -> List[str]:
    """``key: value_a != value_b`` for every setting two configs differ in, but the seed
    (and the ``allowed`` keys)."""
    fa, fb = flat_settings(a), flat_settings(b)
    skip = POOLABLE_KEYS + tuple(allowed)
    diffs = []
    for key in sorted(set(fa) | set(fb)):
        if key in skip or any(key.startswith(k + '.') for k in skip):
            continue
        va, vb = fa.get(key, '<not set>'), fb.get(key, '<not set>')
        if va != vb:
            diffs.append(f'{key}: {va!r} != {vb!r}')
    return diffs


def group_runs(runs: List[Run]) -> Dict[str, List[Run]]:
    """Runs of one model name, pooled only when their configs differ in the seed alone.

    Runs of one name with other settings (epochs, data, crop, ...) are different
    experiments, and pooling them would report their spread as seed noise: that
    is refused, naming the settings that differ. Two runs with the same seed are
    one run twice, and refused too.
    """
    groups: Dict[str, List[Run]] = {}
    for run in runs:
        groups.setdefault(run.model, []).append(run)
    for model, members in groups.items():
        first = members[0]
        for run in members[1:]:
            diffs = setting_differences(first.cfg, run.cfg)
            if diffs:
                shown = '; '.join(diffs[:8]) + (f'; ... ({len(diffs)} in all)'
                                                if len(diffs) > 8 else '')
                raise ValueError(
                    f'{first.work_dir} and {run.work_dir} are both runs of {model!r} but '
                    f'their configs differ in more than randomness.seed: {shown}. Only '
                    'runs that differ in the seed alone are pooled; give the other '
                    'experiment its own config name (or compare it separately).')
        seeds = [run.seed for run in members]
        if len(members) > 1 and len(set(seeds)) < len(seeds):
            raise ValueError(
                f'the runs of {model!r} ({", ".join(r.work_dir for r in members)}) have '
                f'the seeds {seeds}: a repeated seed is the same run twice, not another '
                'seed; pass each run once')
    return groups


# what the runs of one model differ in across the folds of a protocol: their split files
FOLD_KEYS = tuple(f'{split}_dataloader.dataset.ann_file' for split in ('train', 'val', 'test'))


def fold_runs(runs: List[Run]) -> Tuple[str, Dict[str, Dict[str, Run]]]:
    """The holdout key and model -> held-out group -> run, checked to be one protocol."""
    key, table = None, {}
    for run in runs:
        ann_file = run.cfg.test_dataloader.dataset.get('ann_file')
        if not ann_file:
            raise ValueError(f'{run.config_path}: test_dataloader.dataset.ann_file is not set, '
                             'so this is not a fold run (make folds trains them)')
        fold = fold_of_split_file(ann_file)
        if key not in (None, fold['key']):
            raise ValueError(f'{run.work_dir} holds out a {fold["key"]}, the others a {key}')
        key = fold['key']
        folds = table.setdefault(run.model, {})
        if fold['group'] in folds:
            raise ValueError(f'{folds[fold["group"]].work_dir} and {run.work_dir} are both '
                             f'{run.model} on fold {fold["name"]}: pass each fold once')
        run.name = f'{run.model}_{fold["name"]}'
        folds[fold['group']] = run
    for model, folds in table.items():
        first = next(iter(folds.values()))
        for run in folds.values():
            diffs = setting_differences(first.cfg, run.cfg, FOLD_KEYS)
            if diffs:
                raise ValueError(f'{first.work_dir} and {run.work_dir} are folds of {model!r} '
                                 f'but differ in more than their split files: '
                                 f'{"; ".join(diffs[:8])}')
    groups = {model: sorted(folds) for model, folds in table.items()}
    if len({tuple(g) for g in groups.values()}) > 1:
        raise ValueError(f'the models were run on different folds: {groups}')
    return key, {model: dict(sorted(folds.items())) for model, folds in table.items()}


def compare_folds(runs: List[Run], options: ComparisonOptions) -> int:
    """Per held-out group and mean over folds, for every model (``--folds``)."""
    key, table = fold_runs(runs)
    options = replace(options, no_flops=True)
    for run in runs:
        evaluate_run(run, options, {})
    binary = is_binary_damage(runs[0].per_image['classes'])
    stats = {name: STATS[name] for name in (['mIoU', 'damage_IoU'] if binary else ['mIoU'])}
    results = {model: {group: run.per_image['confusions'] for group, run in folds.items()}
               for model, folds in table.items()}
    rows = summarize_folds(results, stats, runs[0].per_image['classes'], options.n_boot,
                           options.seed, options.alpha)
    paths = write_fold_report(rows, list(stats), key, options.out, options.n_boot, options.alpha)
    print(f'written: {", ".join(paths)}')
    return 0


def _pct(value) -> Optional[float]:
    return None if value is None or math.isnan(value) else round(100 * value, 2)


def _interval_fields(name: str, ci: dict) -> dict:
    return {name: _pct(ci['estimate']), f'{name}_ci_low': _pct(ci['low']),
            f'{name}_ci_high': _pct(ci['high']),
            f'{name}_seed_std': None if ci['n_seeds'] < 2 else _pct(ci['seed_sd'])}


def summarize(groups: Dict[str, List[Run]], binary: bool,
              options: ComparisonOptions) -> List[dict]:
    """One row per model: estimates with intervals, seed spread, cost.

    A model with several runs (seeds) gets the mean over them and an interval
    that holds both the images and the spread between seeds; a model with one
    run gets an image-level interval, about that checkpoint ('level').
    """
    rows = []
    for model, runs in groups.items():
        confs = np.stack([run.per_image['confusions'] for run in runs])  # (S, N, C, C)
        per_seed = [metrics_from_confusion(c.sum(axis=0)) for c in confs]
        ci = model_interval(confs, STATS['mIoU'], options.n_boot, options.seed, options.alpha)
        row = dict(model=model, encoder=describe_encoder(runs[0].cfg.model.get('backbone', {})),
                   decoder=runs[0].cfg.model.get('decode_head', {}).get('type', 'n/a'),
                   runs=len(runs), seeds=[run.seed for run in runs], level=ci['level'],
                   interval_method=ci['method'], **_interval_fields('mIoU', ci))
        if binary:
            damage = model_interval(confs, STATS['damage_IoU'], options.n_boot, options.seed,
                                    options.alpha)
            row.update(_interval_fields('damage_IoU', damage))
            gt_images = int((confs[0, :, DAMAGE_CLASS_INDEX_BINARY].sum(axis=-1) > 0).sum())
            row['damage_IoU_note'] = unreliable_note(gt_images)
        row.update(
            mDice=_pct(float(np.mean([m['mDice'] for m in per_seed]))),
            aAcc=_pct(float(np.mean([m['aAcc'] for m in per_seed]))),
            params_m=round(runs[0].stats['params_m'], 2))
        gflops = runs[0].stats['gflops']
        row['gflops_512'] = None if gflops is None else round(gflops, 2)
        row['flops_note'] = runs[0].stats['flops_note']
        row['infer_s_per_img'] = round(statistics.median(r.stats['infer_s'] for r in runs), 4)
        row['infer_timed_images'] = min(r.stats['timed_images'] for r in runs)
        trainings = [r.stats['training'] for r in runs]
        totals = [t['total_s'] for t in trainings if t['total_s'] is not None]
        row['train_time_s'] = round(float(np.mean(totals)), 1) if totals else None
        row['train_time_h'] = round(float(np.mean(totals)) / 3600, 3) if totals else None
        row['train_s_per_iter'] = (round(float(np.mean(
            [t['s_per_iter'] for t in trainings if t['s_per_iter'] is not None])), 4)
            if totals else None)
        row['train_note'] = '; '.join(t['reason'] for t in trainings if t['reason'])
        row['n_images'] = int(confs.shape[1])
        row['checkpoints'] = [run.checkpoint for run in runs]
        rows.append(row)
    return rows


def pairwise(groups: Dict[str, List[Run]], binary: bool,
             options: ComparisonOptions) -> List[dict]:
    """:func:`~artseg_mm.evaluation.paired_test` of every pair of models on the same
    images (seed-aware where both have several runs); significance from
    Holm-adjusted p-values over the pairs of each metric."""
    stats = [(name, STATS[name]) for name in (['mIoU', 'damage_IoU'] if binary else ['mIoU'])]
    rows = []
    for (name_a, runs_a), (name_b, runs_b) in itertools.combinations(groups.items(), 2):
        confs_a = np.stack([run.per_image['confusions'] for run in runs_a])
        confs_b = np.stack([run.per_image['confusions'] for run in runs_b])
        for metric, stat_fn in stats:
            result = paired_test(confs_a, confs_b, stat_fn, options.alpha, options.n_boot,
                                 seed=options.seed)
            rows.append(dict(model_a=name_a, model_b=name_b, metric=metric,
                             diff=_pct(result['difference']), ci_low=_pct(result['low']),
                             ci_high=_pct(result['high']), p_value=result['p_value'],
                             ci_excludes_0=bool(result['low'] > 0 or result['high'] < 0),
                             level=result['level'], method=result['method']))
    for metric, _ in stats:
        family = [row for row in rows if row['metric'] == metric]
        for row, p_holm in zip(family, holm_adjust([row['p_value'] for row in family])):
            row['p_holm'] = round(float(p_holm), 4)
            row['significant'] = bool(p_holm < options.alpha)
    for row in rows:
        row['p_value'] = round(row['p_value'], 4)
    return rows


def comparison_level(runs_per_model: Dict[str, int]) -> str:
    """What the comparison is between, in words (printed above the tables)."""
    single = [model for model, runs in runs_per_model.items() if runs < 2]
    if not single:
        return (f'Every model has at least {min(runs_per_model.values())} training '
                'runs (seeds): intervals and tests hold the spread between seeds as well as '
                'the images, so they compare training configurations (encoders), not '
                'single checkpoints.')
    return (f'{", ".join(single)} {"has" if len(single) == 1 else "have"} one training run: '
            'the intervals and tests involving '
            f'{"it" if len(single) == 1 else "them"} compare {CHECKPOINT_LEVEL} on images like '
            'these, not encoder families; retraining with another seed can move a model by '
            'more than these intervals (train several seeds: make study SEEDS="0 1 2").')


# what may differ between the compared models: the model itself (encoder, its
# decoder channels, the encoder's no-decay parameters) and how each run was launched
MODEL_KEYS = ('model.backbone', 'model.decode_head', 'model.auxiliary_head',
              'model.channels_last', 'optim_wrapper.paramwise_cfg.custom_keys')
# ... except these, which are part of the study's protocol
PROTOCOL_KEYS = ('model.decode_head.loss_decode', 'model.decode_head.num_classes',
                 'model.decode_head.ignore_index', 'model.auxiliary_head.loss_decode',
                 'model.auxiliary_head.num_classes')


def _within(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + '.') for p in prefixes)


def unlike_settings(groups: Dict[str, List[Run]]) -> List[str]:
    """The settings other than the model in which the compared models' runs differ
    (data root and split files, crop, schedule and epochs, loss, augmentation, ...):
    ``key: <model a> value != <model b> value``, against the first model."""
    models = list(groups)
    reference = flat_settings(groups[models[0]][0].cfg)
    diffs = []
    for model in models[1:]:
        other = flat_settings(groups[model][0].cfg)
        for key in sorted(set(reference) | set(other)):
            if _within(key, POOLABLE_KEYS) or (_within(key, MODEL_KEYS)
                                               and not _within(key, PROTOCOL_KEYS)):
                continue
            va, vb = reference.get(key, '<not set>'), other.get(key, '<not set>')
            if va != vb:
                diffs.append(f'{key}: {models[0]} {va!r} != {model} {vb!r}')
    return diffs


class UnlikeRunsError(ValueError):
    """The compared runs differ in more than the model."""


def check_like_runs(groups: Dict[str, List[Run]], allow_unlike: bool) -> List[str]:
    """Refuse models whose runs differ in more than the model, unless allowed; the
    differing settings are returned to be printed above every table and figure."""
    diffs = unlike_settings(groups)
    if diffs and not allow_unlike:
        shown = '; '.join(diffs[:10]) + (f'; ... ({len(diffs)} in all)' if len(diffs) > 10
                                         else '')
        raise UnlikeRunsError(
            f'the runs differ in more than the model, so the comparison would not be of '
            f'encoders: {shown}. Retrain with the same settings, or pass --allow-unlike to '
            'compare them as unlike runs (these settings are then printed above every table '
            'and in the figure titles).')
    return diffs


# ------------------------------------------------------------------------ writing


def per_class_results(groups: Dict[str, List[Run]],
                      options: ComparisonOptions) -> List[dict]:
    """Per model and class: IoU, Dice [CI] (pooled over seeds), pixel and image counts."""
    rows = []
    for model, runs in groups.items():
        classes = runs[0].per_image['classes']
        confs = np.stack([run.per_image['confusions'] for run in runs])
        for cls, info in zip(classes, per_class_intervals(confs, options.n_boot, options.seed,
                                                          options.alpha)):
            row = dict(model=model, cls=cls)
            for key in ('IoU', 'IoU_ci_low', 'IoU_ci_high', 'Dice', 'Dice_ci_low',
                        'Dice_ci_high'):
                row[key] = _pct(info[key])
            row.update(gt_pixels=info['gt_pixels'], gt_images=info['gt_images'],
                       note=info['note'])
            rows.append(row)
    return rows



def choose_images(groups: Dict[str, List[Run]], keep: dict,
                  options: ComparisonOptions) -> List[str]:
    """``--show-images`` ids (checked), else the worst-disagreement images."""
    available = list(keep)
    if options.show_images:
        missing = [i for i in options.show_images if i not in keep]
        if missing:
            raise ValueError(f'--show-images: {missing} not in the test split '
                             f'(ids: {", ".join(available[:10])}...)')
        return list(options.show_images)
    firsts = [runs[0] for runs in groups.values()]
    scores = {}
    for key, (_, gt) in keep.items():
        valid = gt != 255
        if not valid.any():
            scores[key] = 0.
            continue
        if len(firsts) == 1:  # one model: its error rate
            scores[key] = float(np.mean(firsts[0].preds[key][valid] != gt[valid]))
        else:  # share of pixels on which a pair of models disagrees, mean over pairs
            scores[key] = float(np.mean([
                np.mean(a.preds[key][valid] != b.preds[key][valid])
                for a, b in itertools.combinations(firsts, 2)]))
    return sorted(available, key=lambda k: -scores[k])[:options.images]
