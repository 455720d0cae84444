"""Metrics from confusion matrices and the bootstrap, against hand computations."""
import math

import numpy as np
import pytest
import torch

import artseg_mm  # noqa: F401
from artseg_mm.evaluation.functional import (bootstrap_ci, class_iou, confusion_matrix,
                                             cross_fold_ci, holm_adjust, mean_dice, mean_iou,
                                             metrics_from_confusion, paired_bootstrap_diff,
                                             resample_counts)


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
    with pytest.raises(ValueError, match='alpha must be in'):
        bootstrap_ci(np.ones((2, 2, 2)), alpha=1.5)
    with pytest.raises(ValueError, match='same images'):
        paired_bootstrap_diff(np.ones((3, 2, 2)), np.ones((4, 2, 2)))


def test_resample_counts_draw_n_images_each():
    counts = resample_counts(5, 1000, seed=0)
    assert counts.shape == (1000, 5)
    assert (counts.sum(axis=1) == 5).all()
    # every image is drawn 1 time per resample on average
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.1)


def test_identical_images_give_a_zero_width_interval():
    conf = np.array([[30, 5], [4, 11]])
    confs = np.stack([conf] * 6)
    ci = bootstrap_ci(confs, mean_iou, n_boot=500, seed=0)
    expected = metrics_from_confusion(conf)['mIoU']
    assert ci['estimate'] == pytest.approx(expected)
    assert ci['low'] == pytest.approx(expected)
    assert ci['high'] == pytest.approx(expected)


def test_two_image_bootstrap_matches_the_three_possible_resamples():
    a = np.array([[9, 1], [1, 9]])    # a good image
    b = np.array([[5, 5], [5, 5]])    # a bad one
    m_aa = metrics_from_confusion(2 * a)['mIoU']
    m_bb = metrics_from_confusion(2 * b)['mIoU']
    m_ab = metrics_from_confusion(a + b)['mIoU']
    ci = bootstrap_ci(np.stack([a, b]), mean_iou, n_boot=20000, seed=1)
    # resamples {a,a}, {a,b}, {b,b} with probabilities 1/4, 1/2, 1/4
    assert ci['estimate'] == pytest.approx(m_ab)
    assert ci['low'] == pytest.approx(min(m_aa, m_bb, m_ab))
    assert ci['high'] == pytest.approx(max(m_aa, m_bb, m_ab))
    assert ci['boot_mean'] == pytest.approx(0.25 * m_aa + 0.5 * m_ab + 0.25 * m_bb, abs=0.01)


def test_cross_fold_mean_weighs_folds_equally_and_resamples_folds():
    a = np.array([[9, 1], [1, 9]])    # every image of fold A is good
    b = np.array([[5, 5], [5, 5]])    # every image of fold B is bad
    m_a, m_b = (float(metrics_from_confusion(c)['mIoU']) for c in (a, b))
    fold_a, fold_b = np.stack([a] * 3), np.stack([b] * 7)
    ci = cross_fold_ci([fold_a, fold_b], mean_iou, n_boot=20000, seed=0)
    # the mean of the two folds, not the 3:7 pooled images
    assert ci['estimate'] == pytest.approx((m_a + m_b) / 2)
    assert ci['per_fold'] == pytest.approx([m_a, m_b])
    assert (ci['n_folds'], ci['n_images']) == (2, 10)
    # fold draws {A,A}, {A,B}, {B,B}: the interval reaches both folds' values
    assert ci['low'] == pytest.approx(min(m_a, m_b))
    assert ci['high'] == pytest.approx(max(m_a, m_b))
    # images that vary within a fold widen it beyond the fold values
    mixed = cross_fold_ci([np.stack([a, a, b]), np.stack([b, b, a])], mean_iou,
                          n_boot=4000, seed=0)
    assert mixed['low'] < min(mixed['per_fold']) and mixed['high'] > max(mixed['per_fold'])
    with pytest.raises(ValueError, match='at least 2 folds'):
        cross_fold_ci([fold_a])
    with pytest.raises(ValueError, match='different numbers of classes'):
        cross_fold_ci([fold_a, np.zeros((2, 3, 3))])


def test_seed_stack_pools_runs():
    rng = np.random.default_rng(2)
    confs = rng.integers(0, 100, (5, 2, 2))
    single = bootstrap_ci(confs, mean_dice, n_boot=300, seed=0)
    pooled = bootstrap_ci(np.stack([confs, confs]), mean_dice, n_boot=300, seed=0)
    for key in ('estimate', 'low', 'high'):
        assert pooled[key] == pytest.approx(single[key])


def test_paired_difference_of_a_model_with_itself_is_zero_and_not_significant():
    rng = np.random.default_rng(4)
    confs = rng.integers(0, 100, (7, 3, 3))
    diff = paired_bootstrap_diff(confs, confs, mean_iou, n_boot=1000, seed=0)
    assert diff['diff'] == 0 and diff['mean'] == 0
    assert diff['low'] == 0 and diff['high'] == 0
    assert diff['significant'] is False
    assert diff['p_value'] == 1.0


def test_paired_difference_of_a_clearly_better_model_is_significant():
    good = np.stack([np.array([[90, 10], [10, 90]]) + i for i in range(8)])
    bad = np.stack([np.array([[50, 50], [50, 50]]) + i for i in range(8)])
    diff = paired_bootstrap_diff(good, bad, class_iou(1), n_boot=2000, seed=0)
    expected = (metrics_from_confusion(good.sum(0))['IoU'][1]
                - metrics_from_confusion(bad.sum(0))['IoU'][1])
    assert diff['diff'] == pytest.approx(expected)
    assert 0 < diff['low'] <= diff['diff'] <= diff['high']
    assert diff['significant'] is True
    assert diff['p_value'] == 0.0
    reverse = paired_bootstrap_diff(bad, good, class_iou(1), n_boot=2000, seed=0)
    assert reverse['high'] < 0 and reverse['significant'] is True


def test_holm_adjustment_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max
    got = holm_adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.4, 0.9]).tolist() == [0.8, 0.9]  # 0.4*2, then 0.9*1
    assert holm_adjust([0.6, 0.7]).tolist() == [1.0, 1.0]  # and at 1
    with_nan = holm_adjust([0.01, float('nan'), 0.02])  # NaN is not a test
    assert math.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValueError, match='must lie in'):
        holm_adjust([0.5, 1.5])
