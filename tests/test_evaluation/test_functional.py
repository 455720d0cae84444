"""Metrics from confusion matrices, against hand computations and mmseg."""
import math

import numpy as np
import pytest
import torch

import artseg_mm  # noqa: F401
from artseg_mm.evaluation.functional import (Statistic, class_iou, confusion_matrix,
                                             mean_iou, metrics_from_confusion, present_classes,
                                             statistic)


def set_metrics(pred, label, num_classes, ignore_index=255):
    """Per-class IoU/Dice/precision/recall from pixel index sets (no confusion matrix)."""
    pred, label = pred.ravel(), label.ravel()
    keep = label != ignore_index
    pixels = np.arange(pred.size)[keep]
    out = {name: [] for name in ('IoU', 'Dice', 'Precision', 'Recall')}
    for c in range(num_classes):
        p = {i for i in pixels if pred[i] == c}
        g = {i for i in pixels if label[i] == c}
        inter = len(p & g)
        out['IoU'].append(inter / len(p | g) if p | g else math.nan)
        out['Dice'].append(2 * inter / (len(p) + len(g)) if p or g else math.nan)
        out['Precision'].append(inter / len(p) if p else math.nan)
        out['Recall'].append(inter / len(g) if g else math.nan)
    correct = sum(pred[i] == label[i] for i in pixels)
    out['aAcc'] = correct / len(pixels)
    return out


def test_confusion_matrix_counts_pixels_and_ignores():
    label = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    conf = confusion_matrix(pred, label, num_classes=3)
    expected = np.array([[1, 1, 0],   # gt 0: one right, one predicted 1
                         [0, 1, 1],   # gt 1: one right, one predicted 2
                         [0, 0, 1]])  # gt 2: right; the 255 pixel is ignored
    np.testing.assert_array_equal(conf, expected)
    assert conf.dtype == np.int64
    # torch tensors work too
    np.testing.assert_array_equal(
        confusion_matrix(torch.from_numpy(pred), torch.from_numpy(label), 3), expected)


def test_metrics_match_an_independent_pixel_set_computation():
    rng = np.random.default_rng(3)
    label = rng.integers(0, 4, (12, 10))
    label[0, :5] = 255
    pred = rng.integers(0, 4, (12, 10))
    pred[label == 2] = 2          # class 2 always found: recall 1
    pred[pred == 3] = 1           # class 3 never predicted: precision NaN
    conf = confusion_matrix(pred, label, 4)
    got = metrics_from_confusion(conf)
    want = set_metrics(pred, label, 4)
    for name in ('IoU', 'Dice', 'Precision', 'Recall'):
        np.testing.assert_allclose(got[name], want[name], equal_nan=True)
        np.testing.assert_allclose(got['m' + name], np.nanmean(want[name]))
    assert got['aAcc'] == pytest.approx(want['aAcc'])
    assert got['Recall'][2] == 1.0
    assert np.isnan(got['Precision'][3])


def test_metrics_match_mmseg_iou_metric():
    from mmseg.evaluation.metrics import IoUMetric
    rng = np.random.default_rng(0)
    label = torch.from_numpy(rng.integers(0, 3, (16, 16)))
    pred = torch.from_numpy(rng.integers(0, 3, (16, 16)))
    areas = IoUMetric.intersect_and_union(pred, label, 3, 255)
    ref = IoUMetric.total_area_to_metrics(*areas, metrics=['mIoU', 'mDice'])
    got = metrics_from_confusion(confusion_matrix(pred, label, 3))
    np.testing.assert_allclose(got['IoU'], ref['IoU'], rtol=1e-6)
    np.testing.assert_allclose(got['Dice'], ref['Dice'], rtol=1e-6)
    np.testing.assert_allclose(got['Recall'], ref['Acc'], rtol=1e-6)
    assert got['aAcc'] == pytest.approx(float(ref['aAcc']))


def test_class_absent_from_prediction_and_truth_is_nan_and_left_out_of_means():
    conf = np.array([[5, 1, 0],
                     [2, 4, 0],
                     [0, 0, 0]])
    m = metrics_from_confusion(conf)
    assert np.isnan(m['IoU'][2]) and np.isnan(m['Dice'][2])
    iou0, iou1 = 5 / (5 + 1 + 2), 4 / (4 + 2 + 1)
    assert m['mIoU'] == pytest.approx((iou0 + iou1) / 2)
    assert m['mDice'] == pytest.approx((10 / 13 + 8 / 11) / 2)
    assert m['aAcc'] == pytest.approx(9 / 12)


def test_metrics_work_on_stacks():
    rng = np.random.default_rng(1)
    confs = rng.integers(0, 50, (4, 3, 3, 3))
    stacked = metrics_from_confusion(confs)
    assert stacked['IoU'].shape == (4, 3, 3)
    assert stacked['mIoU'].shape == (4, 3)
    np.testing.assert_allclose(stacked['mIoU'][2, 1], metrics_from_confusion(confs[2, 1])['mIoU'])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r'label holds values \[7\] outside \[0, 3\)'):
        confusion_matrix(np.zeros((2, 2)), np.array([[0, 7], [1, 255]]), 3)
    with pytest.raises(ValueError, match='prediction holds values'):
        confusion_matrix(np.full((2, 2), 3), np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match=r'shape \(2, 2\) differs from label shape \(2, 3\)'):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match=r"unknown metric 'mIOU'"):
        statistic('mIOU')
    with pytest.raises(ValueError, match='expected a mask of 3 booleans'):
        metrics_from_confusion(np.ones((3, 3)), classes=[True, False])


def test_a_class_absent_from_the_ground_truth_is_undefined_not_zero():
    # class 2 is predicted (2 pixels) but has no ground truth: nothing to score
    conf = np.array([[5, 1, 1],
                     [2, 4, 1],
                     [0, 0, 0]])
    m = metrics_from_confusion(conf)
    for name in ('IoU', 'Dice', 'Precision', 'Recall'):
        assert np.isnan(m[name][2]), name
    iou0, iou1 = 5 / (5 + 2 + 2), 4 / (4 + 3 + 1)
    assert m['mIoU'] == pytest.approx((iou0 + iou1) / 2)  # over the classes with truth
    # mmseg's mIoU counts the predicted-but-absent class as IoU 0
    assert m['mIoU_mmseg'] == pytest.approx((iou0 + iou1 + 0) / 3)
    assert present_classes(conf).tolist() == [True, True, False]


def test_means_over_a_fixed_class_set_are_undefined_when_a_class_is_missing():
    both = np.array([[6, 2], [1, 3]])
    clean_only = np.array([[8, 0], [0, 0]])
    fixed = np.array([True, True])
    # the split holds both classes: an image with Clean only has no mIoU of that set
    assert np.isnan(metrics_from_confusion(clean_only, fixed)['mIoU'])
    # (by its own ground truth it would score 100: the inflation the fixed set avoids)
    assert metrics_from_confusion(clean_only)['mIoU'] == 1.0
    stacked = metrics_from_confusion(np.stack([both, clean_only]), fixed)['mIoU']
    assert stacked[0] == pytest.approx(metrics_from_confusion(both)['mIoU'])
    assert np.isnan(stacked[1])
    # a statistic needs the classes of its set, or its own class
    assert mean_iou.required(fixed).tolist() == [True, True]
    assert class_iou(1).required(fixed).tolist() == [False, True]
    assert Statistic('aAcc').required(fixed).tolist() == [False, False]
    assert class_iou(1)(both) == pytest.approx(3 / 6)
