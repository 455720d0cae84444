"""How sure a segmentation result is: intervals over images and training seeds, paired
tests, the mean over folds.

Why its own module: a comparison of encoders on a few test images is noise unless
it says how sure it is, and the obvious recipes mislead at the sizes of this field.
Each choice below was checked by the seeded simulations of
:mod:`artseg_mm.evaluation.calibration` (``tools/analysis_tools/check_statistics.py``
prints them):

* **Metrics are aggregates.** mIoU is computed from the summed confusion
  matrices of the images, not averaged over images; a resample is a vector of
  per-image counts and its sums one matrix product.
* **A fixed class set.** Means are over the classes with ground truth in the
  split (:func:`present_classes`), in the estimate and in every resample. A
  resample that lacks the ground truth of a class its statistic needs cannot
  score it; such resamples are not drawn (the bootstrap is conditional on the
  class occurring), never scored 0.
* **Intervals over images**: the expanded percentile bootstrap (Hesterberg,
  "What teachers should know about the bootstrap", 2015): the percentiles are
  widened to those whose normal quantile is ``sqrt(n/(n-1)) t_{n-1}``, which
  corrects the narrowness of the plain percentile interval on 10-30 images.
* **Paired tests**: an exact randomisation test. Under "the two models are
  exchangeable on every image", swapping the two models' confusions on any
  subset of the images is as likely as what was observed; the p-value is the
  share of the 2^N swaps whose |difference| reaches the observed one (all of
  them up to ``EXACT_MAX_IMAGES`` images, a Monte Carlo sample beyond, with
  p = (1 + k) / (B + 1)). Bootstrap p-values reject a true null too often.
* **Training seeds as a level.** Two checkpoints of one encoder differ by
  more than their image-level interval says. With >= 2 seeds per model the
  variance of a model's value is the image-level variance of its seed
  average plus the between-seed variance / seeds, and intervals and tests
  use Student's t with Welch-Satterthwaite degrees of freedom. With one seed
  the result is about checkpoints, and says so.
* **Folds**: the mean of the fold values with a t(k-1) interval.
"""
import itertools
import math
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats

from .functional import Statistic, mean_iou, present_classes, statistic

EXACT_MAX_IMAGES = 16  # 2^16 = 65,536 swaps: enumerated; beyond, Monte Carlo
MIN_RELIABLE_IMAGES = 5  # a statistic from fewer images gets an 'unreliable' flag
_MAX_DRAW_FACTOR = 1000  # conditional resampling gives up after this many draws per resample

CHECKPOINT_LEVEL = 'checkpoints'
ENCODER_LEVEL = 'training runs'


def unreliable_note(n_images: int, what: str = 'ground truth in') -> str:
    """'' or the flag of a statistic that rests on fewer than 5 images."""
    if n_images >= MIN_RELIABLE_IMAGES:
        return ''
    return (f'unreliable: {what} {n_images} image{"s" * (n_images != 1)} '
            f'(< {MIN_RELIABLE_IMAGES})')


def subset_note(confs: np.ndarray, classes: Sequence[str], split_classes: np.ndarray) -> str:
    """Why a subset of a split's images (a metadata group, a fold) may mislead: the
    split's classes it lacks (its means are then undefined) and fewer than 5 images."""
    lacking = [cls for cls, kept, here in zip(classes, split_classes, present_classes(confs))
               if kept and not here]
    notes = [f'no {", ".join(lacking)} ground truth: means undefined'] if lacking else []
    notes.append(unreliable_note(len(confs), 'only'))
    return '; '.join(note for note in notes if note)


def as_seed_stack(confs, name: str) -> np.ndarray:
    """(N, C, C) or (S, N, C, C) -> (S, N, C, C) float64, checked."""
    confs = np.asarray(confs, dtype=np.float64)
    if confs.ndim == 3:
        confs = confs[None]
    if confs.ndim != 4 or confs.shape[-1] != confs.shape[-2]:
        raise ValueError(f'{name}: expected per-image confusions of shape (N, C, C) or '
                         f'(seeds, N, C, C), got {confs.shape}')
    if confs.shape[0] == 0 or confs.shape[1] == 0:
        raise ValueError(f'{name}: no images')
    return confs


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f'alpha must be in (0, 1), got {alpha}')


def _class_set(confs: np.ndarray, classes: Optional[np.ndarray]) -> np.ndarray:
    """``classes`` as a mask, by default the classes with ground truth in the split."""
    return present_classes(confs[0]) if classes is None else np.asarray(classes, bool)


def _gt_presence(confs: np.ndarray) -> np.ndarray:
    """(N, C) bool: the classes each image holds ground truth of (the first run's)."""
    return confs[0].sum(axis=-1) > 0


# ------------------------------------------------------------------------ resampling

def resample_counts(n_images: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each image appears in each bootstrap resample: (n_boot, n_images).

    Drawing n images with replacement is a multinomial draw of the counts.
    """
    if n_boot < 1:
        raise ValueError(f'n_boot must be >= 1, got {n_boot}')
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1. / n_images), size=n_boot)


def conditional_resample_counts(presence: np.ndarray, required: np.ndarray, n_boot: int,
                                seed: int = 0) -> np.ndarray:
    """Bootstrap counts (n_boot, N) of resamples that hold every ``required`` class.

    ``presence`` (N, C) says which classes each image holds ground truth of. A
    resample without any image of a required class cannot score that class: it
    is not drawn (the bootstrap conditional on the class occurring). A class no
    image holds is an error.
    """
    n_images = presence.shape[0]
    need = presence[:, np.asarray(required, dtype=bool)]
    if need.size and not need.any(axis=0).all():
        raise ValueError('conditional_resample_counts: a required class has no ground '
                         'truth in any image')
    if not need.size:
        return resample_counts(n_images, n_boot, seed)
    rng = np.random.default_rng(seed)
    kept, drawn = [], 0
    while sum(len(k) for k in kept) < n_boot:
        if drawn > _MAX_DRAW_FACTOR * n_boot:
            raise ValueError(
                f'conditional_resample_counts: fewer than 1 in {_MAX_DRAW_FACTOR} resamples '
                f'of the {n_images} images hold every class the statistic needs; too rare '
                'classes for an interval')
        batch = rng.multinomial(n_images, np.full(n_images, 1. / n_images),
                                size=max(n_boot, 1000))
        drawn += len(batch)
        kept.append(batch[((batch @ need) > 0).all(axis=1)])
    return np.concatenate(kept)[:n_boot]


def _per_seed_values(confs: np.ndarray, counts: np.ndarray, stat: Statistic,
                     classes: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """The statistic of each resample and run: (n_boot, S)."""
    n_seeds, n_images, n_cls, _ = confs.shape
    flat = confs.reshape(n_seeds, n_images, n_cls * n_cls)
    values = []
    for start in range(0, counts.shape[0], chunk):
        weights = counts[start:start + chunk].astype(np.float64)
        sums = np.einsum('bn,snk->bsk', weights, flat).reshape(-1, n_seeds, n_cls, n_cls)
        values.append(stat(sums, classes))
    return np.concatenate(values)


def _per_seed_estimates(confs: np.ndarray, stat: Statistic, classes: np.ndarray) -> np.ndarray:
    """The statistic of each run on all images: (S,)."""
    return np.asarray(stat(confs.sum(axis=1), classes), dtype=np.float64)


def expanded_alpha(alpha: float, n_images: int) -> float:
    """The tail share of the expanded percentile interval for ``n_images`` images."""
    if n_images < 2:
        return float('nan')
    t = scipy_stats.t.ppf(1 - alpha / 2, n_images - 1)
    return float(2 * scipy_stats.norm.cdf(-math.sqrt(n_images / (n_images - 1)) * t))


def _interval(values: np.ndarray, alpha: float, n_images: int, method: str) -> tuple:
    finite = values[~np.isnan(values)]
    if method == 'percentile':
        tail = alpha
    elif method == 'expanded':
        tail = expanded_alpha(alpha, n_images)
    else:
        raise ValueError(f"interval method {method!r}: use 'expanded' or 'percentile'")
    if finite.size == 0 or math.isnan(tail):
        return float('nan'), float('nan')
    low, high = np.percentile(finite, [100 * tail / 2, 100 * (1 - tail / 2)])
    return float(low), float(high)


def _bootstrap_se(values: np.ndarray, n_images: int) -> float:
    """Bootstrap standard deviation, scaled by sqrt(n/(n-1)) (unbiased for a mean)."""
    finite = values[~np.isnan(values)]
    if finite.size < 2 or n_images < 2:
        return float('nan')
    return float(np.std(finite, ddof=1) * math.sqrt(n_images / (n_images - 1)))


# ------------------------------------------------------------------------- intervals

def bootstrap_ci(per_image_confusions, stat_fn=mean_iou, n_boot: int = 10000, seed: int = 0,
                 alpha: float = 0.05, method: str = 'expanded',
                 classes: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Bootstrap interval of an aggregate metric over the images (checkpoint level).

    Args:
        per_image_confusions: (N, C, C) confusions of N images, or (S, N, C, C)
            for S runs of one model on the same images: then each resample's
            value is the mean over the runs (the images are the only source of
            chance here; :func:`model_interval` adds the seeds).
        stat_fn: A :class:`Statistic` or its name ('mIoU', 'IoU.1', ...).
        n_boot (int): Number of resamples (each holding the classes the
            statistic needs).
        seed (int): Seed of the resampling.
        alpha (float): 1 - confidence level (0.05: 95% interval).
        method (str): 'expanded' (default) or 'percentile' (the plain one,
            kept to measure against).
        classes: (C,) bool class set of the means; default the classes with
            ground truth in the split.

    Returns:
        dict: 'estimate', 'low', 'high', 'se' (image-level standard error),
        'n_images', 'n_boot', 'method', 'level'.
    """
    _check_alpha(alpha)
    stat = statistic(stat_fn)
    confs = as_seed_stack(per_image_confusions, 'bootstrap_ci')
    classes = _class_set(confs, classes)
    estimate = float(np.mean(_per_seed_estimates(confs, stat, classes)))
    n_images = confs.shape[1]
    if math.isnan(estimate):  # e.g. the class of a per-class statistic never occurs
        return dict(estimate=estimate, low=float('nan'), high=float('nan'), se=float('nan'),
                    n_images=n_images, n_boot=int(n_boot), method=method,
                    level=CHECKPOINT_LEVEL)
    counts = conditional_resample_counts(_gt_presence(confs), stat.required(classes), n_boot,
                                         seed)
    values = _per_seed_values(confs, counts, stat, classes).mean(axis=1)
    low, high = _interval(values, alpha, n_images, method)
    return dict(estimate=estimate, low=low, high=high, se=_bootstrap_se(values, n_images),
                n_images=n_images, n_boot=int(n_boot), method=f'{method} percentile bootstrap '
                'over images', level=CHECKPOINT_LEVEL)


def _welch(estimate: float, image_se: float, n_images: int,
           seed_terms: Sequence[tuple], alpha: float) -> Dict[str, float]:
    """t interval and test of ``estimate`` with variance image_se^2 + sum(var/S).

    ``seed_terms``: (between-seed variance, number of seeds) per model. Degrees
    of freedom: Welch-Satterthwaite, the image term with n_images - 1.
    """
    parts = [(image_se ** 2, n_images - 1)] + [(var / n, n - 1) for var, n in seed_terms]
    variance = sum(v for v, _ in parts)
    if math.isnan(variance) or math.isnan(estimate):  # e.g. one image: no image-level error
        nan = float('nan')
        return dict(low=nan, high=nan, se=nan, df=nan, p_value=nan)
    denominator = sum(v ** 2 / df for v, df in parts if df > 0 and v > 0)
    df = variance ** 2 / denominator if denominator > 0 else float('inf')
    se = math.sqrt(variance)
    half = scipy_stats.t.ppf(1 - alpha / 2, df) * se
    p_value = (float(2 * scipy_stats.t.sf(abs(estimate) / se, df)) if se > 0
               else float(estimate == 0) if not math.isnan(estimate) else float('nan'))
    return dict(low=estimate - half, high=estimate + half, se=se, df=float(df),
                p_value=p_value)


def model_interval(per_image_confusions, stat_fn=mean_iou, n_boot: int = 10000,
                   seed: int = 0, alpha: float = 0.05,
                   classes: Optional[np.ndarray] = None) -> Dict[str, object]:
    """A model's metric with an interval that holds what varies in its study.

    One run (N, C, C) or (1, N, C, C): :func:`bootstrap_ci`, about this checkpoint
    on images like these. Several runs (S >= 2 seeds, same images): the mean over
    seeds, with variance = the image-level variance of the seed average + the
    between-seed variance / S and a Welch t interval (cut to [0, 1]): about a
    training of this configuration, not one checkpoint. 'seed_sd' is the seeds'
    standard deviation.
    """
    confs = as_seed_stack(per_image_confusions, 'model_interval')
    if confs.shape[0] == 1:
        return dict(bootstrap_ci(confs, stat_fn, n_boot, seed, alpha, classes=classes),
                    n_seeds=1, seed_sd=float('nan'))
    stat = statistic(stat_fn)
    classes = _class_set(confs, classes)
    per_seed = _per_seed_estimates(confs, stat, classes)
    images = bootstrap_ci(confs, stat, n_boot, seed, alpha, classes=classes)
    n_seeds = confs.shape[0]
    seed_var = float(np.var(per_seed, ddof=1))
    result = _welch(float(per_seed.mean()), images['se'], confs.shape[1],
                    [(seed_var, n_seeds)], alpha)
    # a metric lies in [0, 1]: the symmetric t interval is cut there
    return dict(estimate=float(per_seed.mean()), low=float(np.clip(result['low'], 0, 1)),
                high=float(np.clip(result['high'], 0, 1)),
                se=result['se'], df=result['df'], image_se=images['se'],
                seed_sd=math.sqrt(seed_var), n_seeds=n_seeds, n_images=confs.shape[1],
                n_boot=int(n_boot), level=ENCODER_LEVEL,
                method=f't interval over {n_seeds} seeds and images (Welch df)')


# ----------------------------------------------------------------------- paired tests

def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f'paired_test: the models must be evaluated on the same images and '
                         f'classes; got {a.shape[1:]} and {b.shape[1:]} (images, classes, '
                         'classes)')
    if not np.array_equal(a[0].sum(axis=-1), b[0].sum(axis=-1)):
        raise ValueError('paired_test: the ground truth differs between the two models on '
                         'some image (per-image row sums differ): not the same images in '
                         'the same order')


def _swap_matrix(n_images: int, n_perm: int, seed: int) -> tuple:
    """(M, N) 0/1 rows: which images swap models; all 2^N up to EXACT_MAX_IMAGES."""
    if n_images <= EXACT_MAX_IMAGES:
        rows = np.array(list(itertools.product((0, 1), repeat=n_images)), dtype=np.float64)
        return rows, True
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n_perm, n_images)).astype(np.float64), False


def randomisation_p_value(conf_a: np.ndarray, conf_b: np.ndarray, stat: Statistic,
                          classes: np.ndarray, n_perm: int = 10000,
                          seed: int = 0) -> Dict[str, object]:
    """Two-sided p of stat(A) - stat(B) by swapping the models' confusions per image.

    ``conf_a``, ``conf_b``: (N, C, C). Exact (every swap) up to EXACT_MAX_IMAGES
    images, else ``n_perm`` random swaps with p = (1 + k) / (n_perm + 1).
    """
    n_images, n_cls, _ = conf_a.shape
    flat_a = conf_a.reshape(n_images, -1)
    flat_b = conf_b.reshape(n_images, -1)
    sum_a, sum_b = flat_a.sum(axis=0), flat_b.sum(axis=0)
    observed = float(stat(sum_a.reshape(n_cls, n_cls), classes)
                     - stat(sum_b.reshape(n_cls, n_cls), classes))
    delta = flat_b - flat_a  # what image i adds to A (and takes from B) when swapped
    swaps, exact = _swap_matrix(n_images, n_perm, seed)
    tolerance = 1e-9 * max(1., abs(observed))
    hits = 0
    for start in range(0, len(swaps), 8192):
        moved = swaps[start:start + 8192] @ delta
        diffs = (stat((sum_a + moved).reshape(-1, n_cls, n_cls), classes)
                 - stat((sum_b - moved).reshape(-1, n_cls, n_cls), classes))
        hits += int(np.sum(np.abs(diffs) >= abs(observed) - tolerance))
    p_value = hits / len(swaps) if exact else (1 + hits) / (len(swaps) + 1)
    return dict(difference=observed, p_value=float(p_value), n_permutations=len(swaps),
                exact=exact)


def paired_test(conf_a, conf_b, metric='mIoU', alpha: float = 0.05, n_boot: int = 10000,
                n_perm: int = 10000, seed: int = 0,
                classes: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Is model A's metric different from model B's on the same images? How much?

    Args:
        conf_a, conf_b: per-image confusion matrices of the two models on the
            same images in the same order: (N, C, C) each (one checkpoint per
            model), or (S, N, C, C) for S training runs (seeds) per model.
        metric: 'mIoU' (default), 'mDice', 'aAcc', 'IoU.<k>', 'Dice.<k>' or a
            :class:`~artseg_mm.evaluation.functional.Statistic`.
        alpha (float): 1 - confidence level of the interval.
        n_boot (int): Bootstrap resamples for the interval / image-level error.
        n_perm (int): Random swaps when there are more than 16 images.
        seed (int): Seed of the resampling.
        classes: (C,) bool class set of the means; default the classes with
            ground truth in the images.

    Both models with >= 2 runs: the difference of their seed means, tested and
    bounded with image-level and between-seed variance (Welch t): a verdict
    about the two training configurations ('level': 'training runs'). Otherwise
    an exact paired randomisation test over images (runs of a model pooled, its
    confusions averaged) with an expanded percentile paired bootstrap interval
    (approximate at small N): a verdict about these checkpoints on images like
    these ('level': 'checkpoints'), which says nothing of how much retraining
    would move either model.

    Returns:
        dict: 'difference' (A - B), 'low', 'high', 'p_value', 'n_images',
        'method', 'level', 'n_seeds_a', 'n_seeds_b', and per method
        'n_permutations'/'exact' or 'df'/'se'/'seed_sd_a'/'seed_sd_b'.
    """
    _check_alpha(alpha)
    stat = statistic(metric)
    a = as_seed_stack(conf_a, 'paired_test (model A)')
    b = as_seed_stack(conf_b, 'paired_test (model B)')
    _check_pair(a, b)
    classes = _class_set(a, classes)
    n_images = a.shape[1]
    common = dict(n_images=n_images, n_seeds_a=a.shape[0], n_seeds_b=b.shape[0],
                  metric=stat.name)
    counts = conditional_resample_counts(_gt_presence(a), stat.required(classes), n_boot, seed)
    if a.shape[0] >= 2 and b.shape[0] >= 2:
        per_a = _per_seed_estimates(a, stat, classes)
        per_b = _per_seed_estimates(b, stat, classes)
        boot = (_per_seed_values(a, counts, stat, classes).mean(axis=1)
                - _per_seed_values(b, counts, stat, classes).mean(axis=1))
        difference = float(per_a.mean() - per_b.mean())
        image_se = _bootstrap_se(boot, n_images)
        result = _welch(difference, image_se, n_images,
                        [(float(np.var(per_a, ddof=1)), a.shape[0]),
                         (float(np.var(per_b, ddof=1)), b.shape[0])], alpha)
        return dict(common, difference=difference, low=result['low'], high=result['high'],
                    p_value=result['p_value'], se=result['se'], df=result['df'],
                    image_se=image_se, seed_sd_a=float(np.std(per_a, ddof=1)),
                    seed_sd_b=float(np.std(per_b, ddof=1)), level=ENCODER_LEVEL,
                    method='Welch t over seeds and images')
    pooled_a, pooled_b = a.mean(axis=0), b.mean(axis=0)
    test = randomisation_p_value(pooled_a, pooled_b, stat, classes, n_perm, seed)
    boot = (_per_seed_values(pooled_a[None], counts, stat, classes)[:, 0]
            - _per_seed_values(pooled_b[None], counts, stat, classes)[:, 0])
    low, high = _interval(boot, alpha, n_images, 'expanded')
    kind = 'exact' if test['exact'] else f'Monte Carlo ({test["n_permutations"]} swaps)'
    return dict(common, difference=test['difference'], low=low, high=high,
                p_value=test['p_value'], n_permutations=test['n_permutations'],
                exact=test['exact'], level=CHECKPOINT_LEVEL,
                method=f'{kind} paired randomisation test; expanded percentile paired '
                'bootstrap interval')


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of one family of tests.

    Comparing k models makes k(k-1)/2 tests; at level 0.05 each, some come out
    "significant" by chance alone. Holm's step-down adjustment keeps the chance
    of any false positive in the family at most ``alpha`` (adjusted p < alpha),
    and is uniformly more powerful than Bonferroni. NaN p-values stay NaN and do
    not count as tests. Written here (a few lines) rather than adding statsmodels
    for ``multipletests``.
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


# ---------------------------------------------------------------------- per class

ABSENT_REASON = 'absent: no ground-truth pixel of this class in the split'


def per_class_intervals(per_image_confusions, n_boot: int = 10000, seed: int = 0,
                        alpha: float = 0.05) -> list:
    """Per class: IoU and Dice with intervals, pixel and image counts, a note.

    ``per_image_confusions`` is (N, C, C) or (S, N, C, C) as in
    :func:`model_interval`. Each row has ``gt_pixels`` (summed over the images)
    and ``gt_images`` (images with >= 1 pixel of the class). A class with no
    ground-truth pixel cannot be scored: its values are NaN and ``note`` says it
    is absent; a class in fewer than 5 images gets an 'unreliable' note (its
    interval rests on a handful of images); other classes have ``note`` ''.
    """
    confs = as_seed_stack(per_image_confusions, 'per_class_intervals')
    gt_per_image = confs[0].sum(axis=-1)  # (N, C): ground-truth pixels per image
    rows = []
    for idx in range(confs.shape[-1]):
        row: Dict[str, object] = dict(gt_pixels=int(gt_per_image[:, idx].sum()),
                                      gt_images=int((gt_per_image[:, idx] > 0).sum()))
        absent = row['gt_pixels'] == 0
        for name in ('IoU', 'Dice'):
            if absent:
                row.update({name: float('nan'), f'{name}_ci_low': float('nan'),
                            f'{name}_ci_high': float('nan')})
                continue
            ci = model_interval(confs, f'{name}.{idx}', n_boot, seed, alpha)
            row.update({name: ci['estimate'], f'{name}_ci_low': ci['low'],
                        f'{name}_ci_high': ci['high']})
        row['note'] = ABSENT_REASON if absent else unreliable_note(row['gt_images'])
        rows.append(row)
    return rows


# -------------------------------------------------------------------------- folds

def fold_mean_ci(fold_values: Sequence[float], alpha: float = 0.05) -> Dict[str, object]:
    """Mean of a metric over folds with the t(k-1) interval of the fold values.

    Each held-out group counts once. The interval treats the k folds as a sample
    of groups like them; with 3-5 groups it is wide, and it should be: that is
    what a few held-out groups can say. NaN fold values (the metric undefined
    on that fold) are left out and counted in 'n_left_out'.
    """
    _check_alpha(alpha)
    values = np.asarray(fold_values, dtype=np.float64)
    used = values[~np.isnan(values)]
    k = used.size
    out = dict(n_folds=k, n_left_out=int(values.size - k), method=f't({max(k - 1, 0)}) '
               'interval over the fold values')
    if k == 0:
        return dict(out, estimate=float('nan'), low=float('nan'), high=float('nan'),
                    sd=float('nan'))
    mean = float(used.mean())
    if k < 2:
        return dict(out, estimate=mean, low=float('nan'), high=float('nan'), sd=float('nan'))
    sd = float(np.std(used, ddof=1))
    half = float(scipy_stats.t.ppf(1 - alpha / 2, k - 1) * sd / math.sqrt(k))
    return dict(out, estimate=mean, low=mean - half, high=mean + half, sd=sd)
