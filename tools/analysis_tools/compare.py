"""Compare trained segmentors: metrics with bootstrap CIs, significance, cost, pictures.

Each WORK_DIR is what mmengine's Runner writes for one training run: the config
dump ``<work_dir>/<config name>.py``, checkpoints (``best_*.pth``, else the one
``last_checkpoint`` names) and logs ``<work_dir>/<timestamp>/vis_data/scalars.json``.
For every run the model is rebuilt from the dumped config, its checkpoint
loaded with ``weights_only=True``, and it predicts the split of the config's
``test_dataloader``; :class:`ArtSegMetric` writes the run's per-image
confusions (``<out>/runs/<run>/per_image.json``), which all statistics here
are computed from. Runs whose configs differ only by seed (the same config
name, or names differing by a ``_seed<N>`` suffix) are one model: the table
gives the mean ± std over its seeds and the pooled bootstrap CI. Runs of one
name whose configs differ in anything else (epochs, data, crop, ...), or that
repeat a seed, are refused with the settings that differ.

Writes to ``--out``:

* ``comparison.{csv,json,md}``: per model mIoU [95% CI], damage IoU [CI]
  (binary classes), mDice, aAcc, parameters, FLOPs at 512x512, median
  inference time per image, training time (from the logs);
* ``pairwise.csv`` (also in the .md/.json): every pairwise mIoU (and damage
  IoU) difference, paired bootstrap CI, p-value, Holm-adjusted p-value over
  the model pairs of that metric, and whether it is significant after that
  adjustment (with k models there are k(k-1)/2 chances of a false positive);
* ``metrics_bar.png``: mIoU and damage IoU per model with CI error bars;
* ``per_class.csv``, ``per_class_iou.png``: per model and class, IoU and Dice
  with bootstrap CIs (pooled over seeds), ground-truth pixels and images; a
  class absent from the test split is NaN with the reason, never 0 or 100;
* ``confusion_<model>.png``: the row-normalised confusion matrix of each model
  (its runs summed), class names on both axes;
* ``prediction_grid.png``: image | ground truth | one column per model (its
  first run when it has several) for the ``--show-images`` ids, else the
  ``--images`` images the models disagree on most (with one model: the images
  it gets most wrong);
* ``runs/<run>/``: each run's ArtSegMetric files (per_image.json, per_class.csv,
  per_group.csv by material/content, metrics.json).

With ``--folds`` the work dirs are leave-one-group-out runs (``make folds``: one per model
and fold of ``tools/misc/make_folds.py``), and it writes ``folds.{csv,json,md}`` and
``folds.png`` instead: per model, the metric on each held-out group (bootstrap over its
images) and the mean over folds (bootstrap over folds and the images within them).

Example::

    python tools/analysis_tools/compare.py work_dirs/convnext_tiny_upernet_demo \
        work_dirs/swin_tiny_upernet_demo --out work_dirs/analysis_demo/compare
"""
import argparse
import copy
import glob
import itertools
import json
import math
import os
import os.path as osp
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, DictAction

import artseg_mm  # noqa: F401  (registers modules, installs compat)
from artseg_mm.apis import find_config_dump, init_model
from artseg_mm.datasets.artefact_classes import DAMAGE_CLASS_INDEX_BINARY
from artseg_mm.datasets.folds import fold_of_split_file
from artseg_mm.evaluation import (ArtSegMetric, bootstrap_ci, class_iou, holm_adjust,
                                  load_per_image, mean_iou, metrics_from_confusion,
                                  paired_bootstrap_diff, per_class_intervals)
from artseg_mm.evaluation.artseg_metric import is_binary_damage
from artseg_mm.evaluation.cross_fold import summarize_folds, write_fold_report
from artseg_mm.runtime_checks import find_test_checkpoint

SEED_SUFFIX = re.compile(r'_seed\d+$')
FLOPS_SIZE = (512, 512)
# the statistics compared: mIoU always, the damage class's IoU for binary labels
STATS = dict(mIoU=mean_iou, damage_IoU=class_iou(DAMAGE_CLASS_INDEX_BINARY))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Compare trained models (work dirs): bootstrap CIs, '
        'significance, params/FLOPs/speed, bar chart and prediction grids.')
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dirs written by tools/train.py (one per run)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--images', type=int, default=4,
                        help='number of worst-disagreement images in the grid')
    parser.add_argument('--show-images', nargs='+', default=None, metavar='ID',
                        help='image ids (file names without extension) for the grid '
                        'instead of the worst-disagreement ones')
    parser.add_argument('--n-boot', type=int, default=10000, help='bootstrap resamples')
    parser.add_argument('--alpha', type=float, default=0.05,
                        help='1 - confidence level of the intervals')
    parser.add_argument('--seed', type=int, default=0, help='seed of the bootstrap')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument('--no-flops', action='store_true',
                        help='skip the FLOPs count (it runs one 512x512 forward per model)')
    parser.add_argument('--grid-size', type=int, default=384,
                        help='longest side of each panel of the prediction grid')
    parser.add_argument(
        '--folds', action='store_true',
        help='the WORK_DIRs are the fold runs of tools/misc/make_folds.py splits (make '
        'folds): report each held-out group and the mean over folds, with intervals '
        '(no FLOPs, pairs or grids)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='overrides applied to every dumped config, e.g. '
        'test_dataloader.dataset.data_root=data/artefact_demo')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- runs

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


def describe_encoder(cfg: Config) -> str:
    """timm model name, else the backbone type (and depth)."""
    backbone = cfg.model.get('backbone', {})
    if backbone.get('model_name'):
        return str(backbone['model_name'])
    depth = backbone.get('depth')
    return f"{backbone.get('type', 'n/a')}{'-' + str(depth) if depth else ''}"


def build_model(cfg: Config, checkpoint: Optional[str], device: str) -> torch.nn.Module:
    """The run's segmentor with its checkpoint's weights (strict), in eval mode."""
    return init_model(cfg, checkpoint, device=device)


def build_dataset(cfg: Config):
    """The dataset of the config's test_dataloader (the val split in our configs)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))


def _flops(model: torch.nn.Module, device: str) -> float:
    from mmengine.analysis import get_model_complexity_info
    inputs = torch.randn(1, 3, *FLOPS_SIZE, device=device)
    # mmengine's counter traces with torch.jit, to which WinogradConv2d's NNPACK
    # path is an opaque Python op: count the same convs on PyTorch's default path
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False,
                                         show_arch=False)
    return float(info['flops']) / 1e9


def count_flops(model: torch.nn.Module, cfg: Config,
                device: str) -> Tuple[Optional[float], str]:
    """GFLOPs of one 512x512 forward (mmengine's counter: 1 multiply-add = 1 FLOP).

    A fixed-size encoder built for another size (CoaT's ``img_size``) is
    counted on the same architecture built for 512x512 (FLOPs do not depend on
    the weights). Returns (None, reason) when the model cannot be traced.
    """
    try:
        return _flops(model, device), ''
    except Exception as error:  # retried below or reported in the table as n/a
        first = f'{type(error).__name__}: {str(error).splitlines()[0][:160]}'
    backbone = cfg.model.get('backbone') or {}
    if backbone.get('img_size') is None:
        return None, first
    resized = copy.deepcopy(cfg)
    resized.model.backbone.img_size = FLOPS_SIZE[0]
    try:
        return _flops(build_model(resized, None, device), device), (
            f'counted on the architecture built with img_size={FLOPS_SIZE[0]} '
            f"(the checkpoint's model takes {backbone['img_size']})")
    except Exception as error:  # reported in the table as n/a with both reasons
        return None, (f'{first}; with img_size={FLOPS_SIZE[0]}: {type(error).__name__}: '
                      f'{str(error).splitlines()[0][:160]}')


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


def evaluate_run(run: Run, args, keep: dict) -> None:
    """Predict the test split, time it, and write the run's per-image results.

    ``keep`` collects, once for all runs, each image (RGB) and ground truth at
    grid size; the run's own predictions at grid size go to ``run.preds``.
    """
    import mmcv
    from mmengine.dataset import pseudo_collate
    from tqdm import tqdm

    model = build_model(run.cfg, run.checkpoint, args.device)
    dataset = build_dataset(run.cfg)
    out_dir = osp.join(args.out, 'runs', run.name)
    metric = ArtSegMetric(bootstrap=False, output_dir=out_dir)
    metric.dataset_meta = dataset.metainfo
    cuda = str(args.device).startswith('cuda')
    times = []
    with torch.no_grad():
        warm = pseudo_collate([dataset[0]])
        model.test_step(warm)  # first call pays one-off costs; not timed
        for idx in tqdm(range(len(dataset)), desc=f'{run.name}: predicting', unit='img'):
            batch = pseudo_collate([dataset[idx]])
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs = model.test_step(batch)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            metric.process(batch, outputs)
            sample = outputs[0]
            key = image_id(sample.img_path)
            pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.uint8)
            run.preds[key] = downsize(pred, args.grid_size)
            if key not in keep:
                image = mmcv.imread(sample.img_path, channel_order='rgb')
                gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy().astype(np.uint8)
                keep[key] = (downsize(image, args.grid_size), downsize(gt, args.grid_size))
    metric.compute_metrics(metric.results)
    run.per_image = load_per_image(osp.join(out_dir, 'per_image.json'))
    run.stats = dict(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        infer_s=statistics.median(times),
        palette=dataset.metainfo.get('palette'))
    if args.no_flops:
        run.stats.update(gflops=None, flops_note='skipped (--no-flops)')
    else:
        gflops, reason = count_flops(model, run.cfg, args.device)
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


def compare_folds(runs: List[Run], args) -> int:
    """Per held-out group and mean over folds, for every model (``--folds``)."""
    key, table = fold_runs(runs)
    args.no_flops = True
    for run in runs:
        evaluate_run(run, args, {})
    binary = is_binary_damage(runs[0].per_image['classes'])
    stats = {name: STATS[name] for name in (['mIoU', 'damage_IoU'] if binary else ['mIoU'])}
    results = {model: {group: run.per_image['confusions'] for group, run in folds.items()}
               for model, folds in table.items()}
    rows = summarize_folds(results, stats, args.n_boot, args.seed, args.alpha)
    paths = write_fold_report(rows, list(stats), key, args.out, args.n_boot, args.alpha)
    print(f'written: {", ".join(paths)}')
    return 0


def _pct(value) -> Optional[float]:
    return None if value is None or math.isnan(value) else round(100 * value, 2)


def summarize(groups: Dict[str, List[Run]], binary: bool, args) -> List[dict]:
    """One row per model: point estimates, pooled CIs, seed spread, cost."""
    rows = []
    for model, runs in groups.items():
        confs = np.stack([run.per_image['confusions'] for run in runs])  # (S, N, C, C)
        per_seed = [metrics_from_confusion(c.sum(axis=0)) for c in confs]
        ci = bootstrap_ci(confs, STATS['mIoU'], args.n_boot, args.seed, args.alpha)
        row = dict(model=model, encoder=describe_encoder(runs[0].cfg),
                   decoder=runs[0].cfg.model.get('decode_head', {}).get('type', 'n/a'),
                   runs=len(runs), seeds=[run.seed for run in runs],
                   mIoU=_pct(ci['estimate']), mIoU_ci_low=_pct(ci['low']),
                   mIoU_ci_high=_pct(ci['high']),
                   mIoU_seed_std=_pct(float(np.std([m['mIoU'] for m in per_seed], ddof=1)))
                   if len(runs) > 1 else None)
        if binary:
            damage = bootstrap_ci(confs, STATS['damage_IoU'], args.n_boot, args.seed,
                                  args.alpha)
            row.update(damage_IoU=_pct(damage['estimate']), damage_IoU_ci_low=_pct(damage['low']),
                       damage_IoU_ci_high=_pct(damage['high']),
                       damage_IoU_seed_std=_pct(float(np.std(
                           [m['IoU'][DAMAGE_CLASS_INDEX_BINARY] for m in per_seed], ddof=1)))
                       if len(runs) > 1 else None)
        row.update(
            mDice=_pct(float(np.mean([m['mDice'] for m in per_seed]))),
            aAcc=_pct(float(np.mean([m['aAcc'] for m in per_seed]))),
            params_m=round(runs[0].stats['params_m'], 2))
        gflops = runs[0].stats['gflops']
        row['gflops_512'] = None if gflops is None else round(gflops, 2)
        row['flops_note'] = runs[0].stats['flops_note']
        row['infer_s_per_img'] = round(statistics.median(r.stats['infer_s'] for r in runs), 4)
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


def pairwise(groups: Dict[str, List[Run]], binary: bool, args) -> List[dict]:
    """Paired bootstrap of every pair of models (on the same resampled images);
    significance from Holm-adjusted p-values over the pairs of each metric."""
    stats = [(name, STATS[name]) for name in (['mIoU', 'damage_IoU'] if binary else ['mIoU'])]
    rows = []
    for (name_a, runs_a), (name_b, runs_b) in itertools.combinations(groups.items(), 2):
        confs_a = np.stack([run.per_image['confusions'] for run in runs_a])
        confs_b = np.stack([run.per_image['confusions'] for run in runs_b])
        for metric, stat_fn in stats:
            result = paired_bootstrap_diff(confs_a, confs_b, stat_fn, args.n_boot,
                                           args.seed, args.alpha)
            rows.append(dict(model_a=name_a, model_b=name_b, metric=metric,
                             diff=_pct(result['diff']), ci_low=_pct(result['low']),
                             ci_high=_pct(result['high']), p_value=result['p_value'],
                             ci_excludes_0=result['significant']))
    for metric, _ in stats:
        family = [row for row in rows if row['metric'] == metric]
        for row, p_holm in zip(family, holm_adjust([row['p_value'] for row in family])):
            row['p_holm'] = round(float(p_holm), 4)
            row['significant'] = bool(p_holm < args.alpha)
    for row in rows:
        row['p_value'] = round(row['p_value'], 4)
    return rows


# ------------------------------------------------------------------------ writing

def _fmt(value, digits: int = 2) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}'


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return 'n/a'
    if seconds < 120:
        return f'{seconds:.0f} s'
    return f'{seconds / 60:.1f} min' if seconds < 7200 else f'{seconds / 3600:.2f} h'


def _ci(row: dict, key: str) -> str:
    if row.get(key) is None:
        return 'n/a'
    text = f"{row[key]:.2f} [{_fmt(row[key + '_ci_low'])}, {_fmt(row[key + '_ci_high'])}]"
    if row.get(key + '_seed_std') is not None:
        text += f" (seeds: ±{row[key + '_seed_std']:.2f})"
    return text


def write_tables(rows: List[dict], pairs: List[dict], binary: bool, args) -> None:
    import csv
    level = round(100 * (1 - args.alpha))
    with open(osp.join(args.out, 'comparison.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(models=rows, pairwise=pairs, n_boot=args.n_boot, alpha=args.alpha,
                       seed=args.seed, flops_input=list(FLOPS_SIZE)), f, indent=2)
    fields = [k for k in rows[0] if k not in ('checkpoints', 'seeds')]
    with open(osp.join(args.out, 'comparison.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields + ['seeds'], extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, 'seeds': ' '.join(str(s) for s in row['seeds'])})
    with open(osp.join(args.out, 'pairwise.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=['model_a', 'model_b', 'metric', 'diff', 'ci_low',
                                               'ci_high', 'ci_excludes_0', 'p_value', 'p_holm',
                                               'significant'])
        writer.writeheader()
        writer.writerows(pairs)

    header = ['model', 'encoder', 'decoder', 'runs', f'mIoU [{level}% CI]']
    if binary:
        header.append(f'damage IoU [{level}% CI]')
    header += ['mDice', 'params (M)', 'GFLOPs @512x512', 'inference (s/img)', 'training time']
    lines = ['# Model comparison', '',
             f'{rows[0]["n_images"]} test images; percentile bootstrap over images '
             f'({args.n_boot} resamples, seed {args.seed}); with several runs per model the '
             'value is the mean over seeds, ± their standard deviation, and the interval '
             'is pooled over seeds. FLOPs: mmengine counter (1 multiply-add = 1 FLOP). '
             'Inference: median per image, warm, batch 1, on ' + str(args.device) + '.', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    notes = []
    for row in rows:
        cells = [row['model'], row['encoder'], row['decoder'], str(row['runs']),
                 _ci(row, 'mIoU')]
        if binary:
            cells.append(_ci(row, 'damage_IoU'))
        gflops = _fmt(row['gflops_512'])
        if row['flops_note']:
            notes.append(f"{row['model']}: FLOPs {gflops}: {row['flops_note']}")
        if row['train_time_h'] is None:
            notes.append(f"{row['model']}: training time n/a ({row['train_note']})")
        cells += [_fmt(row['mDice']), _fmt(row['params_m']), gflops,
                  _fmt(row['infer_s_per_img'], 3), _duration(row['train_time_s'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [''] + [f'- {note}' for note in notes] + ([''] if notes else [])
    lines += ['## Pairwise differences (A - B, paired bootstrap)', '']
    if pairs:
        lines += [f'Significant: Holm-adjusted p < {args.alpha} over the model pairs of each '
                  'metric (the intervals and p are per pair, unadjusted).', '',
                  f'| A | B | metric | diff | {level}% CI | p | p (Holm) | significant |',
                  '|---|---|---|---|---|---|---|---|']
        lines += [f"| {p['model_a']} | {p['model_b']} | {p['metric']} | {_fmt(p['diff'])} | "
                  f"[{_fmt(p['ci_low'])}, {_fmt(p['ci_high'])}] | {p['p_value']:.4f} | "
                  f"{p['p_holm']:.4f} | {'yes' if p['significant'] else 'no'} |"
                  for p in pairs]
    else:
        lines.append('(one model: no pairs)')
    with open(osp.join(args.out, 'comparison.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


# ------------------------------------------------------------------- per class

def per_class_results(groups: Dict[str, List[Run]], args) -> List[dict]:
    """Per model and class: IoU, Dice [CI] (pooled over seeds), pixel and image counts."""
    rows = []
    for model, runs in groups.items():
        classes = runs[0].per_image['classes']
        confs = np.stack([run.per_image['confusions'] for run in runs])
        for cls, info in zip(classes, per_class_intervals(confs, args.n_boot, args.seed,
                                                          args.alpha)):
            row = dict(model=model, cls=cls)
            for key in ('IoU', 'IoU_ci_low', 'IoU_ci_high', 'Dice', 'Dice_ci_low',
                        'Dice_ci_high'):
                row[key] = _pct(info[key])
            row.update(gt_pixels=info['gt_pixels'], gt_images=info['gt_images'],
                       note=info['note'])
            rows.append(row)
    return rows


def write_per_class(rows: List[dict], args) -> str:
    """``per_class.csv``; absent classes are empty cells with the note, never 0."""
    import csv
    path = osp.join(args.out, 'per_class.csv')
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=['model', 'class', 'IoU', 'IoU_ci_low',
                                               'IoU_ci_high', 'Dice', 'Dice_ci_low',
                                               'Dice_ci_high', 'gt_pixels', 'gt_images',
                                               'note'])
        writer.writeheader()
        for row in rows:
            out = {('class' if k == 'cls' else k): ('NaN' if v is None else v)
                   for k, v in row.items()}
            writer.writerow(out)
    return path


def plot_per_class(rows: List[dict], args) -> str:
    """Grouped bars: IoU per class (x) and model (colour) with CI error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(row['model'] for row in rows))
    classes = list(dict.fromkeys(row['cls'] for row in rows))
    by_key = {(row['model'], row['cls']): row for row in rows}
    level = round(100 * (1 - args.alpha))
    width = 0.8 / len(models)
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(classes) * max(1, len(models) / 2) + 2),
                                    4.8))
    for m, model in enumerate(models):
        vals, low, high = [], [], []
        for cls in classes:
            row = by_key[(model, cls)]
            value = row['IoU']
            vals.append(np.nan if value is None else value)
            low.append(0 if value is None else value - row['IoU_ci_low'])
            high.append(0 if value is None else row['IoU_ci_high'] - value)
        offset = x - 0.4 + width * (m + 0.5)
        ax.bar(offset, vals, width, yerr=[low, high], capsize=2, label=model)
    absent = [i for i, cls in enumerate(classes)
              if all(by_key[(model, cls)]['note'] for model in models)]
    for i in absent:
        ax.text(x[i], 2, 'absent', rotation=90, ha='center', va='bottom', fontsize=8,
                color='0.4')
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=45, ha='right')
    ax.set_ylim(0, 100)
    ax.set_ylabel('IoU (%)')
    ax.set_title(f'IoU per class, {level}% bootstrap CI over images '
                 '("absent": no ground truth in the split)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = osp.join(args.out, 'per_class_iou.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusions(groups: Dict[str, List[Run]], args) -> List[str]:
    """One row-normalised confusion matrix per model (rows: truth, columns: prediction)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    paths = []
    for model, runs in groups.items():
        classes = runs[0].per_image['classes']
        conf = np.sum([run.per_image['confusions'].sum(axis=0) for run in runs],
                      axis=0).astype(np.float64)
        totals = conf.sum(axis=1, keepdims=True)
        norm = np.divide(conf, totals, out=np.full_like(conf, np.nan), where=totals > 0)
        size = max(4, 0.45 * len(classes) + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        image = ax.imshow(norm, vmin=0, vmax=1, cmap='Blues')
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xticklabels(classes, rotation=60, ha='right', fontsize=8)
        ax.set_yticklabels([f'{c} (absent)' if totals[i, 0] == 0 else c
                            for i, c in enumerate(classes)], fontsize=8)
        if len(classes) <= 16:
            for i in range(len(classes)):
                for j in range(len(classes)):
                    if not np.isnan(norm[i, j]) and norm[i, j] >= 0.005:
                        ax.text(j, i, f'{100 * norm[i, j]:.0f}', ha='center', va='center',
                                fontsize=6, color='w' if norm[i, j] > 0.5 else 'k')
        ax.set_xlabel('predicted')
        ax.set_ylabel('ground truth')
        ax.set_title(f'{model}: confusion, % of each true class'
                     + (f' ({len(runs)} runs summed)' if len(runs) > 1 else ''))
        fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        path = osp.join(args.out, f'confusion_{model}.png')
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_bars(rows: List[dict], groups: Dict[str, List[Run]], binary: bool, args) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metrics = ['mIoU'] + (['damage_IoU'] if binary else [])
    level = round(100 * (1 - args.alpha))
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows) + 2), 4.5))
    for k, metric in enumerate(metrics):
        values = np.array([row[metric] for row in rows], dtype=float)
        low = values - np.array([row[metric + '_ci_low'] for row in rows], dtype=float)
        high = np.array([row[metric + '_ci_high'] for row in rows], dtype=float) - values
        offset = x + (k - (len(metrics) - 1) / 2) * width
        ax.bar(offset, values, width, yerr=np.vstack([low, high]), capsize=4,
               label=metric.replace('_', ' '))
        for i, row in enumerate(rows):  # each seed's own value
            runs = groups[row['model']]
            if len(runs) > 1:
                seed_values = [100 * float(STATS[metric](r.per_image['confusions'].sum(0)))
                               for r in runs]
                ax.scatter([offset[i]] * len(runs), seed_values, color='k', s=10, zorder=3)
    ax.set_xticks(x)
    ax.set_xticklabels([row['model'] for row in rows], rotation=20, ha='right')
    ax.set_ylabel('%')
    ax.set_title(f'{level}% bootstrap CI over {rows[0]["n_images"]} images'
                 + (' (dots: seeds)' if any(r['runs'] > 1 for r in rows) else ''))
    ax.set_ylim(0, min(100, 1.15 * max(max(r[m + '_ci_high'] or 0 for r in rows)
                                       for m in metrics) + 1))
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    path = osp.join(args.out, 'metrics_bar.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def choose_images(groups: Dict[str, List[Run]], keep: dict, args) -> List[str]:
    """``--show-images`` ids (checked), else the worst-disagreement images."""
    available = list(keep)
    if args.show_images:
        missing = [i for i in args.show_images if i not in keep]
        if missing:
            raise ValueError(f'--show-images: {missing} not in the test split '
                             f'(ids: {", ".join(available[:10])}...)')
        return list(args.show_images)
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
    return sorted(available, key=lambda k: -scores[k])[:args.images]


def overlay(image: np.ndarray, mask: np.ndarray, palette, ignored: np.ndarray) -> np.ndarray:
    """Blend the class colours over the image.

    Classes drawn in black (Clean) are left untinted so damage stands out;
    pixels the ground truth ignores (background) are greyed in every panel.
    """
    out = image.astype(np.float32).copy()
    colours = np.asarray(palette, dtype=np.float32)
    tinted = (mask < len(colours)) & ~ignored
    tinted[tinted] = colours[mask[tinted]].any(axis=-1)
    out[tinted] = 0.45 * out[tinted] + 0.55 * colours[mask[tinted]]
    out[ignored] = 0.35 * out[ignored] + 0.65 * 128
    return out.astype(np.uint8)


def plot_grid(groups: Dict[str, List[Run]], keep: dict, ids: List[str], args) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    firsts = [(model if len(runs) == 1 else f'{model} ({runs[0].name})', runs[0])
              for model, runs in groups.items()]
    palette = firsts[0][1].stats['palette']
    if palette is None:
        raise ValueError(f'{firsts[0][1].config_path}: the dataset has no palette to draw with')
    ncols = 2 + len(firsts)
    fig, axes = plt.subplots(len(ids), ncols, figsize=(2.6 * ncols, 2.8 * len(ids)),
                             squeeze=False)
    for r, key in enumerate(ids):
        image, gt = keep[key]
        valid = gt != 255
        panels = [(image, f'{key}'), (overlay(image, gt, palette, ~valid),
                                      'ground truth (grey: ignored)')]
        for model, run in firsts:
            pred = run.preds[key]
            acc = float(np.mean(pred[valid] == gt[valid])) * 100 if valid.any() else float('nan')
            panels.append((overlay(image, pred, palette, ~valid),
                           f'{model}\npixel acc {acc:.1f}%'))
        for c, (panel, title) in enumerate(panels):
            axes[r, c].imshow(panel)
            axes[r, c].set_title(title, fontsize=8)
            axes[r, c].axis('off')
    fig.tight_layout()
    path = osp.join(args.out, 'prediction_grid.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.images < 1:
        raise ValueError(f'--images must be >= 1, got {args.images}')
    os.makedirs(args.out, exist_ok=True)
    runs = load_runs(args.work_dirs, args.cfg_options)
    if args.folds:
        return compare_folds(runs, args)
    keep: dict = {}
    for run in runs:
        evaluate_run(run, args, keep)
    check_same_images(runs)
    binary = is_binary_damage(runs[0].per_image['classes'])
    groups = group_runs(runs)
    rows = summarize(groups, binary, args)
    pairs = pairwise(groups, binary, args)
    write_tables(rows, pairs, binary, args)
    bar = plot_bars(rows, groups, binary, args)
    class_rows = per_class_results(groups, args)
    write_per_class(class_rows, args)
    per_class = plot_per_class(class_rows, args)
    confusions = plot_confusions(groups, args)
    grid = plot_grid(groups, keep, choose_images(groups, keep, args), args)
    print(f'written: {args.out}/comparison.{{csv,json,md}}, pairwise.csv, per_class.csv, '
          f'{bar}, {per_class}, {", ".join(confusions)}, {grid}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
