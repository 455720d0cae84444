"""Intervals, paired tests and fold means: against hand computations, brute force and
seeded simulations of their error rates."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

import artseg_mm  # noqa: F401
from artseg_mm.evaluation import paired_test
from artseg_mm.evaluation.calibration import (interval_coverage, null_rejection_rates,
                                              seed_level_rejection_rate)
from artseg_mm.evaluation.cross_fold import OVERALL, summarize_folds
from artseg_mm.evaluation.functional import (class_iou, mean_dice, mean_iou,
                                             metrics_from_confusion)
from artseg_mm.evaluation.statistics import (bootstrap_ci, conditional_resample_counts,
                                             expanded_alpha, fold_mean_ci, holm_adjust,
                                             model_interval, per_class_intervals,
                                             resample_counts)


def test_resample_counts_draw_n_images_each():
    counts = resample_counts(5, 1000, seed=0)
    assert counts.shape == (1000, 5)
    assert (counts.sum(axis=1) == 5).all()
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.1)


def test_identical_images_give_a_zero_width_interval():
    conf = np.array([[30, 5], [4, 11]])
    ci = bootstrap_ci(np.stack([conf] * 6), mean_iou, n_boot=500, seed=0)
    expected = metrics_from_confusion(conf)['mIoU']
    assert ci['estimate'] == pytest.approx(expected)
    assert ci['low'] == pytest.approx(expected) and ci['high'] == pytest.approx(expected)


def test_two_image_bootstrap_spans_the_three_possible_resamples():
    a = np.array([[9, 1], [1, 9]])    # a good image
    b = np.array([[5, 5], [5, 5]])    # a bad one
    values = [metrics_from_confusion(c)['mIoU'] for c in (2 * a, a + b, 2 * b)]
    ci = bootstrap_ci(np.stack([a, b]), mean_iou, n_boot=20000, seed=1)
    assert ci['estimate'] == pytest.approx(values[1])
    # two images: the expanded tails are far below 1/4, so min and max are inside
    assert ci['low'] == pytest.approx(min(values)) and ci['high'] == pytest.approx(max(values))


def test_expanded_percentiles_widen_small_samples_and_vanish_for_large_ones():
    # Hesterberg's expanded percentile: tail = 2 Phi(-sqrt(n/(n-1)) t_{n-1, 0.975})
    want = 2 * scipy_stats.norm.cdf(-math.sqrt(10 / 9) * scipy_stats.t.ppf(0.975, 9))
    assert expanded_alpha(0.05, 10) == pytest.approx(want)
    assert 0.016 < expanded_alpha(0.05, 10) < 0.018
    assert expanded_alpha(0.05, 10000) == pytest.approx(0.05, abs=1e-3)
    assert math.isnan(expanded_alpha(0.05, 1))
    rng = np.random.default_rng(5)
    confs = rng.integers(1, 100, (10, 2, 2))
    wide = bootstrap_ci(confs, mean_iou, 4000, 0, method='expanded')
    plain = bootstrap_ci(confs, mean_iou, 4000, 0, method='percentile')
    assert wide['low'] < plain['low'] and wide['high'] > plain['high']


def test_runs_of_one_model_average_over_seeds_in_the_image_bootstrap():
    rng = np.random.default_rng(2)
    confs = rng.integers(0, 100, (5, 2, 2))
    single = bootstrap_ci(confs, mean_dice, n_boot=300, seed=0)
    pooled = bootstrap_ci(np.stack([confs, confs]), mean_dice, n_boot=300, seed=0)
    for key in ('estimate', 'low', 'high'):
        assert pooled[key] == pytest.approx(single[key])


def test_seed_level_interval_adds_the_between_seed_variance():
    rng = np.random.default_rng(3)
    confs = rng.integers(1, 200, (3, 12, 2, 2))
    ci = model_interval(confs, mean_iou, n_boot=2000, seed=0)
    per_seed = np.array([metrics_from_confusion(c.sum(0))['mIoU'] for c in confs])
    image_se = bootstrap_ci(confs, mean_iou, 2000, 0)['se']
    variance = image_se ** 2 + per_seed.var(ddof=1) / 3
    df = variance ** 2 / (image_se ** 4 / 11 + (per_seed.var(ddof=1) / 3) ** 2 / 2)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(variance)
    assert ci['estimate'] == pytest.approx(per_seed.mean())
    assert (ci['low'], ci['high']) == pytest.approx((per_seed.mean() - half,
                                                     per_seed.mean() + half))
    assert ci['seed_sd'] == pytest.approx(per_seed.std(ddof=1)) and ci['n_seeds'] == 3
    assert ci['level'] == 'training runs'
    single = model_interval(confs[0], mean_iou, n_boot=2000, seed=0)
    assert single['level'] == 'checkpoints' and single['n_seeds'] == 1


def brute_force_p(a, b, stat):
    """Two-sided p of the swap test by looping over every subset of swapped images."""
    classes = metrics_from_confusion(a.sum(0))['IoU'] == metrics_from_confusion(a.sum(0))['IoU']
    observed = stat(a.sum(0), classes) - stat(b.sum(0), classes)
    hits = total = 0
    for swap in itertools.product((False, True), repeat=len(a)):
        swap = np.array(swap)
        sa = np.where(swap[:, None, None], b, a).sum(0)
        sb = np.where(swap[:, None, None], a, b).sum(0)
        hits += abs(stat(sa, classes) - stat(sb, classes)) >= abs(observed) - 1e-12
        total += 1
    return hits / total


def test_paired_test_is_the_exact_randomisation_test():
    rng = np.random.default_rng(7)
    gt = rng.integers(20, 60, (7, 2))
    a = np.zeros((7, 2, 2), int)
    b = np.zeros((7, 2, 2), int)
    for conf, skill in ((a, 0.7), (b, 0.6)):
        right = rng.binomial(gt, skill)
        conf[:, 0, 0], conf[:, 0, 1] = right[:, 0], gt[:, 0] - right[:, 0]
        conf[:, 1, 1], conf[:, 1, 0] = right[:, 1], gt[:, 1] - right[:, 1]
    result = paired_test(a, b, 'mIoU', n_boot=500)
    assert result['exact'] is True and result['n_permutations'] == 2 ** 7
    assert result['p_value'] == pytest.approx(brute_force_p(a, b, mean_iou))
    want = metrics_from_confusion(a.sum(0))['mIoU'] - metrics_from_confusion(b.sum(0))['mIoU']
    assert result['difference'] == pytest.approx(want)
    assert set(result) >= {'difference', 'low', 'high', 'p_value', 'n_images', 'method'}
    assert result['n_images'] == 7 and 'exact' in result['method']


def test_a_clear_winner_gets_the_smallest_p_the_test_can_give_never_zero():
    good = np.stack([np.array([[90, 10], [10, 90]]) + i for i in range(8)])
    bad = np.stack([np.array([[50, 50], [50, 50]]) + i for i in range(8)])
    result = paired_test(good, bad, class_iou(1), n_boot=1000)
    assert result['p_value'] == 2 / 2 ** 8   # the observed split and its mirror image
    assert 0 < result['low'] <= result['difference'] <= result['high']
    # beyond 16 images: Monte Carlo swaps, p = (1 + k) / (B + 1) > 0
    many_good = np.concatenate([good] * 3)
    many_bad = np.concatenate([bad] * 3)
    mc = paired_test(many_good, many_bad, 'IoU.1', n_boot=200, n_perm=999, seed=1)
    assert mc['exact'] is False and mc['n_permutations'] == 999
    assert mc['p_value'] == pytest.approx(1 / 1000)


def test_a_model_against_itself_differs_by_zero_with_p_one():
    rng = np.random.default_rng(4)
    confs = rng.integers(0, 100, (7, 3, 3))
    result = paired_test(confs, confs, 'mIoU', n_boot=500)
    assert result['difference'] == 0 and result['p_value'] == 1.0
    assert result['low'] == 0 and result['high'] == 0


def test_paired_test_refuses_other_images_or_ground_truth():
    a = np.ones((3, 2, 2))
    with pytest.raises(ValueError, match='same images'):
        paired_test(a, np.ones((4, 2, 2)))
    other = a.copy()
    other[1, 0, 0] = 5
    with pytest.raises(ValueError, match='ground truth differs'):
        paired_test(a, other)


def test_paired_p_values_hold_their_level_on_exchangeable_models():
    """Seeded simulation, 500 replications of 10 images: one pair of exchangeable
    checkpoints rejects at about 5%, Holm over the 6 pairs of 4 models at most 7%."""
    rates = null_rejection_rates(10, reps=500, n_models=4, n_boot=50, seed=0)
    assert rates['pair'] <= 0.065
    assert rates['familywise'] <= 0.07


def test_seed_aware_test_holds_its_level_where_checkpoint_tests_do_not():
    """Two equal encoders, 3 seeds each (seed SD about 3 points, image-level paired SE
    about 1 point), 500 seeded replications: the seed-aware test rejects <= 7%; a
    test of one checkpoint of each calls them different far more often."""
    result = seed_level_rejection_rate(n_images=10, n_seeds=3, reps=500, n_boot=300, seed=0)
    assert 2.5 <= result['seed_sd_points'] <= 3.5
    assert 0.7 <= result['image_se_points'] <= 1.3
    assert result['rate'] <= 0.07
    assert result['checkpoint_test_rate'] >= 0.2


def test_expanded_intervals_cover_better_than_plain_percentiles_on_ten_images():
    coverage = interval_coverage(10, reps=400, n_boot=1000, seed=0)
    assert coverage['expanded'] >= 0.90
    assert coverage['expanded'] > coverage['percentile']
    assert coverage['difference'] >= 0.90


def rare_class_split():
    """10 images; class 2 only in image 0 (found well there), stray class-2 pixels
    predicted in the other nine."""
    confs = np.zeros((10, 3, 3), int)
    confs[:, 0, 0], confs[:, 1, 1], confs[:, 0, 1], confs[:, 1, 0] = 400, 200, 20, 30
    confs[1:, 0, 2] = 1
    confs[0, 2, 2], confs[0, 2, 0] = 90, 10
    return confs


def test_a_rare_class_is_never_scored_zero_for_lacking_ground_truth():
    confs = rare_class_split()
    counts = conditional_resample_counts(confs.sum(-1) > 0, np.array([False, False, True]),
                                         2000, seed=0)
    assert len(counts) == 2000 and (counts[:, 0] > 0).all()  # every resample holds image 0
    row = per_class_intervals(confs, n_boot=2000, seed=0)[2]
    assert row['gt_images'] == 1 and row['note'].startswith('unreliable: ground truth in 1')
    # the 9 stray pixels cost at most 9 / 109: no resample falls to 0
    assert row['IoU_ci_low'] >= 90 / (100 + 9) - 1e-9
    assert row['IoU_ci_high'] <= 90 / 100 + 1e-9
    # mIoU over the fixed set {0, 1, 2} in every resample: never NaN, never over two classes
    ci = bootstrap_ci(confs, mean_iou, 2000, 0)
    full = metrics_from_confusion(confs.sum(0))
    assert ci['estimate'] == pytest.approx(np.mean(full['IoU']))
    assert not math.isnan(ci['low']) and ci['low'] > 0.5


def test_holm_adjustment_by_hand():
    got = holm_adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.4, 0.9]).tolist() == [0.8, 0.9]
    assert holm_adjust([0.6, 0.7]).tolist() == [1.0, 1.0]
    with_nan = holm_adjust([0.01, float('nan'), 0.02])
    assert math.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValueError, match='must lie in'):
        holm_adjust([0.5, 1.5])


def test_fold_mean_has_the_t_interval_of_the_fold_values():
    values = [0.62, 0.55, 0.71, 0.48]
    ci = fold_mean_ci(values)
    half = scipy_stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert ci['estimate'] == pytest.approx(np.mean(values))
    assert (ci['low'], ci['high']) == pytest.approx((np.mean(values) - half,
                                                     np.mean(values) + half))
    left = fold_mean_ci([0.6, float('nan'), 0.5])
    assert left['n_folds'] == 2 and left['n_left_out'] == 1
    assert left['estimate'] == pytest.approx(0.55)


def test_fold_table_flags_small_folds_and_names_the_folds_each_mean_uses():
    rng = np.random.default_rng(0)

    def fold(n, with_damage=True):
        confs = np.zeros((n, 2, 2), int)
        confs[:, 0, 0] = rng.integers(300, 400, n)
        confs[:, 0, 1] = rng.integers(5, 30, n)
        if with_damage:
            confs[:, 1, 1] = rng.integers(50, 100, n)
            confs[:, 1, 0] = rng.integers(5, 30, n)
        return confs

    results = {'m': {'canvas': fold(8), 'paper': fold(6), 'photo': fold(3),
                     'vellum': fold(5, with_damage=False)}}
    rows = summarize_folds(results, {'mIoU': mean_iou, 'damage_IoU': class_iou(1)},
                           ['Clean', 'Damage'], n_boot=300)
    by = {row['group']: row for row in rows}
    assert by['photo']['note'] == 'unreliable: only 3 images (< 5)'
    assert by['vellum']['note'].startswith('no Damage ground truth: means undefined')
    assert by['vellum']['mIoU'] is None and by['vellum']['damage_IoU'] is None
    assert by['canvas']['note'] == ''
    mean = by[OVERALL]
    used = [by[g]['mIoU'] / 100 for g in ('canvas', 'paper', 'photo')]
    want = fold_mean_ci(used)
    assert mean['mIoU'] == pytest.approx(100 * want['estimate'], abs=0.01)
    assert mean['mIoU_ci_low'] == pytest.approx(100 * want['low'], abs=0.02)
    assert mean['mIoU_folds'] == '3 of 4 (left out, undefined: vellum)'
    assert mean['damage_IoU_folds'] == '3 of 4 (left out, undefined: vellum)'
    # a one-image fold has no interval (not a zero-width one)
    single = summarize_folds({'m': {'a': fold(1), 'b': fold(6)}}, {'mIoU': mean_iou},
                             ['Clean', 'Damage'], n_boot=200)
    assert single[0]['mIoU'] is not None and single[0]['mIoU_ci_low'] is None
