"""Segmentation metrics from confusion matrices.

Pure numpy, so the metric, the comparison tool, the statistics and the tests share
one implementation. Confusion matrices are ``(num_classes, num_classes)`` int64
with rows = ground truth, columns = prediction; every function also takes a stack
of them (``(..., C, C)``) and works on all at once. The uncertainty of these
metrics (intervals, paired tests) is :mod:`artseg_mm.evaluation.statistics`.
"""
from typing import Dict, Optional

import numpy as np


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


def metrics_from_confusion(conf: np.ndarray,
                           classes: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Per-class and mean metrics of a confusion matrix (or a stack of them).

    Per class c, with TP = conf[c, c], FP = column sum - TP, FN = row sum - TP:
    IoU = TP / (TP + FP + FN); Dice (= F1) = 2TP / (2TP + FP + FN);
    Precision = TP / (TP + FP); Recall (mmseg's per-class ``Acc``) = TP / (TP + FN).
    A class without ground-truth pixels cannot be scored: its IoU, Dice, Precision
    and Recall are NaN (undefined), not the 0 a stray prediction would give.
    Precision is also NaN for a class never predicted (0/0).

    The means (mIoU, mDice, mPrecision, mRecall) are over a fixed class set:
    ``classes`` (a boolean mask of length C), by default the classes with
    ground truth in each matrix. A matrix in which a class of the set has no
    ground truth has undefined means (NaN): averaging it over fewer classes
    would change what the number means. (mPrecision skips classes of the set
    that were never predicted, as mmseg does.) ``mIoU_mmseg`` is mmseg
    ``IoUMetric``'s mIoU for comparison with published mmseg numbers: the mean
    over classes present in the prediction or the ground truth, counting a
    class predicted but absent from the ground truth as IoU 0.
    aAcc = trace / total. All values are fractions in [0, 1].

    Args:
        conf (np.ndarray): (..., C, C) confusion matrices, rows = ground truth.
        classes (np.ndarray, optional): (C,) bool, the class set of the means.

    Returns:
        dict: 'IoU', 'Dice', 'Precision', 'Recall' of shape (..., C); 'aAcc',
        'mIoU', 'mDice', 'mPrecision', 'mRecall', 'mIoU_mmseg' of shape (...).
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.ndim < 2 or conf.shape[-1] != conf.shape[-2]:
        raise ValueError(f'metrics_from_confusion: expected (..., C, C) confusion '
                         f'matrices, got shape {conf.shape}')
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    gt = conf.sum(axis=-1)
    pred = conf.sum(axis=-2)
    scored = gt > 0
    union = gt + pred - tp
    per_class = dict(
        IoU=np.where(scored, _divide(tp, union), np.nan),
        Dice=np.where(scored, _divide(2 * tp, gt + pred), np.nan),
        Precision=np.where(scored, _divide(tp, pred), np.nan),
        Recall=_divide(tp, gt))
    if classes is None:
        in_set = scored
        undefined = ~scored.any(axis=-1)
    else:
        in_set = np.broadcast_to(_class_mask(classes, conf.shape[-1]), scored.shape)
        undefined = (in_set & ~scored).any(axis=-1) | ~in_set.any(axis=-1)
    out = dict(aAcc=_divide(tp.sum(axis=-1), conf.sum(axis=(-2, -1))))
    out.update(per_class)
    for name, values in per_class.items():
        mean = nanmean(np.where(in_set, values, np.nan), axis=-1)
        out['m' + name] = np.where(undefined, np.nan, mean)
    out['mIoU_mmseg'] = nanmean(_divide(tp, union), axis=-1)
    return out


def _class_mask(classes, num_classes: int) -> np.ndarray:
    mask = np.asarray(classes, dtype=bool)
    if mask.shape != (num_classes,):
        raise ValueError(f'classes: expected a mask of {num_classes} booleans, got shape '
                         f'{mask.shape}')
    return mask


def present_classes(conf: np.ndarray) -> np.ndarray:
    """(C,) bool: the classes with ground-truth pixels in a summed stack (..., C, C)."""
    conf = np.asarray(conf)
    gt = conf.reshape(-1, conf.shape[-2], conf.shape[-1]).sum(axis=(0, 2))
    return gt > 0


class Statistic:
    """A metric of a confusion stack, by name: 'mIoU', 'mDice', 'aAcc', 'IoU.<k>', 'Dice.<k>'.

    ``stat(conf, classes)`` gives the metric of each matrix of ``conf`` (..., C, C),
    the means over the class set ``classes``; :meth:`required` says which classes
    a resample of images must contain for the metric to be defined (the statistics
    draw only such resamples).
    """

    MEANS = ('mIoU', 'mDice')
    CLASS_METRICS = ('IoU', 'Dice')

    def __init__(self, name: str):
        self.name = name
        metric, _, index = name.partition('.')
        if name in self.MEANS or name == 'aAcc':
            self.metric, self.index = name, None
        elif metric in self.CLASS_METRICS and index.isdigit():
            self.metric, self.index = metric, int(index)
        else:
            raise ValueError(f"unknown metric {name!r}: use one of 'mIoU', 'mDice', 'aAcc', "
                             "'IoU.<class index>', 'Dice.<class index>'")

    def __call__(self, conf: np.ndarray, classes: Optional[np.ndarray] = None) -> np.ndarray:
        values = metrics_from_confusion(conf, classes)[self.metric]
        return values if self.index is None else values[..., self.index]

    def required(self, classes: np.ndarray) -> np.ndarray:
        """(C,) bool: the classes a resample must hold ground truth of."""
        need = np.zeros(len(classes), dtype=bool)
        if self.metric in self.MEANS:
            need |= np.asarray(classes, dtype=bool)
        elif self.index is not None:
            if self.index >= len(classes):
                raise ValueError(f'{self.name}: class index {self.index} outside the '
                                 f'{len(classes)} classes')
            need[self.index] = True
        return need

    def __repr__(self) -> str:
        return f'Statistic({self.name!r})'


def statistic(metric) -> Statistic:
    """A :class:`Statistic` from itself or its name."""
    return metric if isinstance(metric, Statistic) else Statistic(str(metric))


mean_iou = Statistic('mIoU')
mean_dice = Statistic('mDice')


def class_iou(index: int) -> Statistic:
    """The IoU of class ``index`` (e.g. the damage class)."""
    return Statistic(f'IoU.{int(index)}')


def class_dice(index: int) -> Statistic:
    """The Dice of class ``index``."""
    return Statistic(f'Dice.{int(index)}')
