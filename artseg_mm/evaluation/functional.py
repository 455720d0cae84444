"""Segmentation metrics from confusion matrices, and bootstrap confidence intervals.

Pure numpy, so the metric, the comparison tool and the tests share one
implementation. Confusion matrices are ``(num_classes, num_classes)`` int64 with
rows = ground truth, columns = prediction; every function also takes a stack of
them (``(..., C, C)``) and works on all at once.

Why the bootstrap: with 10 validation images a few points of mIoU are noise.
Images are resampled with replacement and the metric is recomputed from the
summed confusion matrices of each resample (the metric is an aggregate over
pixels, not a mean over images), giving a percentile interval. A resample is a
vector of per-image counts, so the sums of all resamples are one matrix product
(``counts @ stacked confusions``).
"""
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

StatFn = Callable[[np.ndarray], np.ndarray]


def confusion_matrix(pred, label, num_classes: int,
                     ignore_index: Optional[int] = 255) -> np.ndarray:
    """Pixel confusion matrix of one prediction, rows = ground truth.

    Pixels whose label is ``ignore_index`` are left out. A prediction or label
    outside ``[0, num_classes)`` (other than the ignore index) is an error.

    Args:
        pred: Predicted class map (H, W), array-like of ints.
        label: Ground-truth class map of the same shape.
        num_classes (int): Number of classes.
        ignore_index (int, optional): Label value to ignore.

    Returns:
        np.ndarray: (num_classes, num_classes) int64.
    """
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f'confusion_matrix: prediction shape {pred.shape} differs from '
                         f'label shape {label.shape}')
    if num_classes < 1:
        raise ValueError(f'confusion_matrix: num_classes must be >= 1, got {num_classes}')
    pred = pred.astype(np.int64).ravel()
    label = label.astype(np.int64).ravel()
    if ignore_index is not None:
        keep = label != ignore_index
        pred, label = pred[keep], label[keep]
    for name, values in (('label', label), ('prediction', pred)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            found = np.unique(values[bad])[:10].tolist()
            raise ValueError(
                f'confusion_matrix: {name} holds values {found} outside [0, {num_classes})'
                + (f' and not the ignore index {ignore_index}' if name == 'label' else ''))
    counts = np.bincount(label * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (0/0: the quantity is undefined)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over non-NaN entries; NaN (no warning) where all are NaN."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.).sum(axis=axis)
    return _divide(total, count)


def metrics_from_confusion(conf: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-class and mean metrics of a confusion matrix (or a stack of them).

    Per class c, with TP = conf[c, c], FP = column sum - TP, FN = row sum - TP:
    IoU = TP / (TP + FP + FN); Dice (= F1) = 2TP / (2TP + FP + FN);
    Precision = TP / (TP + FP); Recall (mmseg's per-class ``Acc``) = TP / (TP + FN).
    As in mmseg's ``IoUMetric``, a 0/0 is NaN: IoU and Dice of a class absent from
    both prediction and ground truth, Precision of a class never predicted,
    Recall of a class absent from the ground truth. The means (mIoU, mDice,
    mPrecision, mRecall) are over the non-NaN classes, as ``np.nanmean`` in mmseg.
    aAcc = trace / total. All values are fractions in [0, 1].

    Args:
        conf (np.ndarray): (..., C, C) confusion matrices, rows = ground truth.

    Returns:
        dict: 'IoU', 'Dice', 'Precision', 'Recall' of shape (..., C); 'aAcc',
        'mIoU', 'mDice', 'mPrecision', 'mRecall' of shape (...).
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim < 2 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f'metrics_from_confusion: expected (..., C, C) confusion '
                         f'matrices, got shape {conf.shape}')
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    gt = conf.sum(axis=-1)
    pred = conf.sum(axis=-2)
    per_class = dict(
        IoU=_divide(tp, gt + pred - tp),
        Dice=_divide(2 * tp, gt + pred),
        Precision=_divide(tp, pred),
        Recall=_divide(tp, gt))
    out = dict(aAcc=_divide(tp.sum(axis=-1), conf.sum(axis=(-2, -1))))
    out.update(per_class)
    for name, values in per_class.items():
        out['m' + name] = nanmean(values, axis=-1)
    return out


# Statistics for the bootstrap: (..., C, C) confusions -> (...) values.

def mean_iou(conf: np.ndarray) -> np.ndarray:
    """mIoU (fraction) of each confusion matrix in a stack."""
    return metrics_from_confusion(conf)['mIoU']


def mean_dice(conf: np.ndarray) -> np.ndarray:
    """mDice (fraction) of each confusion matrix in a stack."""
    return metrics_from_confusion(conf)['mDice']


def class_iou(index: int) -> StatFn:
    """A statistic: the IoU of class ``index`` (e.g. the damage class)."""

    def stat(conf: np.ndarray) -> np.ndarray:
        return metrics_from_confusion(conf)['IoU'][..., index]

    stat.__name__ = f'class_iou_{index}'
    return stat


def class_dice(index: int) -> StatFn:
    """A statistic: the Dice of class ``index``."""

    def stat(conf: np.ndarray) -> np.ndarray:
        return metrics_from_confusion(conf)['Dice'][..., index]

    stat.__name__ = f'class_dice_{index}'
    return stat


ABSENT_REASON = 'absent: no ground-truth pixel of this class in the split'


def per_class_intervals(per_image_confusions, n_boot: int = 10000, seed: int = 0,
                        alpha: float = 0.05) -> List[Dict[str, object]]:
    """Per class: IoU and Dice with bootstrap intervals, pixel and image counts.

    ``per_image_confusions`` is (N, C, C) or (S, N, C, C) as in
    :func:`bootstrap_ci`. Each row has ``gt_pixels`` (summed over the images,
    the first run's when several) and ``gt_images`` (images with >= 1 pixel of
    the class). A class with no ground-truth pixel cannot be scored: its IoU,
    Dice and intervals are NaN and ``note`` says it is absent (a model that
    predicts it somewhere would otherwise score 0, and one that does not, NaN
    or 100 depending on the convention); present classes have ``note`` ''.
    """
    confs = _as_seed_stack(per_image_confusions, 'per_class_intervals')
    gt_per_image = confs[0].sum(axis=-1)  # (N, C): ground-truth pixels per image
    rows = []
    for idx in range(confs.shape[-1]):
        row: Dict[str, object] = dict(gt_pixels=int(gt_per_image[:, idx].sum()),
                                      gt_images=int((gt_per_image[:, idx] > 0).sum()))
        absent = row['gt_pixels'] == 0
        for name, stat in (('IoU', class_iou(idx)), ('Dice', class_dice(idx))):
            if absent:
                row.update({name: float('nan'), f'{name}_ci_low': float('nan'),
                            f'{name}_ci_high': float('nan')})
                continue
            ci = bootstrap_ci(confs, stat, n_boot, seed, alpha)
            row.update({name: ci['estimate'], f'{name}_ci_low': ci['low'],
                        f'{name}_ci_high': ci['high']})
        row['note'] = ABSENT_REASON if absent else ''
        rows.append(row)
    return rows


def _as_seed_stack(confs, name: str) -> np.ndarray:
    """(N, C, C) or (S, N, C, C) -> (S, N, C, C) float64, checked."""
    confs = np.asarray(confs, dtype=np.float64)
    if confs.ndim == 3:
        confs = confs[None]
    if confs.ndim != 4 or confs.shape[-1] != confs.shape[-2]:
        raise ValueError(f'{name}: expected per-image confusions of shape (N, C, C) or '
                         f'(seeds, N, C, C), got {confs.shape}')
    if confs.shape[1] == 0:
        raise ValueError(f'{name}: no images')
    return confs


def resample_counts(n_images: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each image appears in each bootstrap resample: (n_boot, n_images).

    Drawing n images with replacement is a multinomial draw of the counts.
    """
    if n_boot < 1:
        raise ValueError(f'n_boot must be >= 1, got {n_boot}')
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1. / n_images), size=n_boot)


def _resampled_stat(confs: np.ndarray, counts: np.ndarray, stat_fn: StatFn,
                    chunk: int = 2000) -> np.ndarray:
    """Statistic of each resample, averaged over seeds: (n_boot,).

    ``confs`` is (S, N, C, C); each resample sums the images it drew, per seed.
    """
    n_seeds, n_images, n_cls, _ = confs.shape
    flat = confs.reshape(n_seeds, n_images, n_cls * n_cls)
    values = []
    for start in range(0, counts.shape[0], chunk):
        weights = counts[start:start + chunk].astype(np.float64)  # (B, N)
        sums = np.einsum('bn,snk->bsk', weights, flat).reshape(-1, n_seeds, n_cls, n_cls)
        values.append(nanmean(stat_fn(sums), axis=-1))
    return np.concatenate(values)


def _point_estimate(confs: np.ndarray, stat_fn: StatFn) -> float:
    """Statistic of all images summed, averaged over seeds."""
    return float(nanmean(stat_fn(confs.sum(axis=1)), axis=-1))


def _percentiles(values: np.ndarray, alpha: float) -> tuple:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return float('nan'), float('nan')
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f'alpha must be in (0, 1), got {alpha}')


def bootstrap_ci(per_image_confusions, stat_fn: StatFn = mean_iou, n_boot: int = 10000,
                 seed: int = 0, alpha: float = 0.05) -> Dict[str, float]:
    """Percentile bootstrap interval of an aggregate metric over images.

    Args:
        per_image_confusions: (N, C, C) confusions of N images, or
            (S, N, C, C) for S runs (seeds) of one model on the same images:
            then each resample's statistic is the mean over the runs, i.e. the
            interval of the seed-averaged metric (the pooled interval).
        stat_fn: (..., C, C) -> (...) statistic, e.g. :func:`mean_iou`.
        n_boot (int): Number of resamples.
        seed (int): Seed of the resampling.
        alpha (float): 1 - confidence level (0.05: 95% interval).

    Returns:
        dict: 'estimate' (the statistic of all images), 'low', 'high',
        'boot_mean', 'boot_std', 'n_boot', 'n_images'.
    """
    _check_alpha(alpha)
    confs = _as_seed_stack(per_image_confusions, 'bootstrap_ci')
    counts = resample_counts(confs.shape[1], n_boot, seed)
    values = _resampled_stat(confs, counts, stat_fn)
    low, high = _percentiles(values, alpha)
    return dict(estimate=_point_estimate(confs, stat_fn), low=low, high=high,
                boot_mean=float(np.nanmean(values)) if not np.isnan(values).all() else
                float('nan'),
                boot_std=float(np.nanstd(values)) if not np.isnan(values).all() else
                float('nan'),
                n_boot=int(n_boot), n_images=int(confs.shape[1]))


def paired_bootstrap_diff(model_a_confs, model_b_confs, stat_fn: StatFn = mean_iou,
                          n_boot: int = 10000, seed: int = 0,
                          alpha: float = 0.05) -> Dict[str, float]:
    """Paired bootstrap of ``stat(A) - stat(B)`` on the same images.

    Both models are evaluated on the same resampled image indices, so the
    interval reflects the difference between the models, not the spread of
    image difficulty they share. The difference is significant at level
    ``alpha`` when the interval excludes 0.

    Args:
        model_a_confs, model_b_confs: (N, C, C) or (S, N, C, C) confusions on
            the same N images in the same order (seed counts may differ).
        stat_fn, n_boot, seed, alpha: As in :func:`bootstrap_ci`.

    Returns:
        dict: 'diff' (the difference on all images), 'mean' (mean of the
        bootstrap differences), 'low', 'high', 'significant' (bool),
        'p_value' (two-sided bootstrap p: twice the smaller tail share of
        differences on either side of 0, at most 1), 'n_boot', 'n_images'.
    """
    _check_alpha(alpha)
    a = _as_seed_stack(model_a_confs, 'paired_bootstrap_diff (model A)')
    b = _as_seed_stack(model_b_confs, 'paired_bootstrap_diff (model B)')
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f'paired_bootstrap_diff: the models must be evaluated on the same '
                         f'images and classes; got {a.shape[1:]} and {b.shape[1:]} '
                         f'(images, classes, classes)')
    counts = resample_counts(a.shape[1], n_boot, seed)
    diffs = _resampled_stat(a, counts, stat_fn) - _resampled_stat(b, counts, stat_fn)
    low, high = _percentiles(diffs, alpha)
    finite = diffs[~np.isnan(diffs)]
    if finite.size:
        p_value = min(1., 2 * min(np.mean(finite <= 0), np.mean(finite >= 0)))
        mean = float(finite.mean())
    else:
        p_value, mean = float('nan'), float('nan')
    return dict(diff=_point_estimate(a, stat_fn) - _point_estimate(b, stat_fn),
                mean=mean, low=low, high=high,
                significant=bool(low > 0 or high < 0), p_value=float(p_value),
                n_boot=int(n_boot), n_images=int(a.shape[1]))


def cross_fold_ci(fold_confusions: Sequence, stat_fn: StatFn = mean_iou, n_boot: int = 10000,
                  seed: int = 0, alpha: float = 0.05) -> Dict[str, object]:
    """Mean of a metric over leave-one-group-out folds, with a two-level bootstrap interval.

    Each fold's metric is computed on its own held-out images and the estimate is the mean
    over folds (each held-out group counts once, whatever its size). A resample draws the
    folds with replacement and, within each drawn fold, its images with replacement, so the
    interval holds both sources of chance: which groups there are and which images they hold.

    Args:
        fold_confusions: one (N_f, C, C) (or (S, N_f, C, C)) confusion stack per fold.
        stat_fn, n_boot, seed, alpha: As in :func:`bootstrap_ci`.

    Returns:
        dict: 'estimate', 'low', 'high', 'per_fold' (the metric of each fold),
        'n_folds', 'n_images', 'n_boot'.
    """
    _check_alpha(alpha)
    folds = [_as_seed_stack(confs, 'cross_fold_ci') for confs in fold_confusions]
    if len(folds) < 2:
        raise ValueError(f'cross_fold_ci: needs at least 2 folds, got {len(folds)}')
    if len({confs.shape[-1] for confs in folds}) != 1:
        raise ValueError('cross_fold_ci: the folds have different numbers of classes: '
                         f'{[confs.shape[-1] for confs in folds]}')
    if n_boot < 1:
        raise ValueError(f'n_boot must be >= 1, got {n_boot}')
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(folds), size=(n_boot, len(folds)))  # folds drawn per resample
    values = np.empty(picks.shape)
    for index, confs in enumerate(folds):
        slots = picks == index
        if slots.any():  # an independent image resample for every slot that drew this fold
            counts = resample_counts(confs.shape[1], int(slots.sum()), int(rng.integers(2**31)))
            values[slots] = _resampled_stat(confs, counts, stat_fn)
    per_fold = [_point_estimate(confs, stat_fn) for confs in folds]
    low, high = _percentiles(nanmean(values, axis=1), alpha)
    return dict(estimate=float(nanmean(np.asarray(per_fold))), low=low, high=high,
                per_fold=per_fold, n_folds=len(folds),
                n_images=int(sum(confs.shape[1] for confs in folds)), n_boot=int(n_boot))


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of one family of tests.

    Comparing k models makes k(k-1)/2 tests; at level 0.05 each, some come out
    "significant" by chance alone. Holm's step-down adjustment keeps the chance
    of any false positive in the family at most ``alpha`` (adjusted p < alpha),
    and is uniformly more powerful than Bonferroni. NaN p-values (no finite
    bootstrap difference) stay NaN and do not count as tests. Written here (a
    few lines) rather than adding statsmodels for ``multipletests``.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f'holm_adjust: expected a 1-D list of p-values, got shape {p.shape}')
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError(f'holm_adjust: p-values must lie in [0, 1], got {p.tolist()}')
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(finite)
    order = idx[np.argsort(p[idx], kind='stable')]
    m = order.size
    steps = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return out
