"""Seeded simulations that check the statistics: false-positive rates and coverage.

Why it exists: a p-value or an interval is only worth what its error rate is on
data like ours, and that can be measured. The simulated study is binary
segmentation (clean / damage) of images of 4096 pixels whose damage share and
difficulty vary, by models whose damage recall and false-alarm rate depend on
the image, on the training run (a seed effect) and on run-by-image noise; the
per-image confusions are binomial draws. Under the null every model of a
replication is drawn from the same distribution, so any "significant"
difference is a false positive. ``tools/analysis_tools/check_statistics.py``
prints these rates; the tests assert them.
"""
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from .functional import mean_iou, present_classes
from .statistics import bootstrap_ci, holm_adjust, model_interval, paired_test

PIXELS = 4096


@dataclass(frozen=True)
class SimulatedStudy:
    """How the simulated models and images vary (logit scale).

    The defaults give, at 10 images, a paired image-level standard error of the
    mIoU difference of two checkpoints of about 1 point; ``seed_sd`` 0.19 gives a
    between-seed standard deviation of mIoU of about 3 points.
    """
    image_sd: float = 0.8     # image difficulty, shared by every model
    noise_sd: float = 0.25    # run x image: how differently two runs fail on one image
    seed_sd: float = 0.0      # training run (seed) effect
    damage_a: float = 2.0     # beta(a, b) share of damage pixels in an image
    damage_b: float = 6.0

    def images(self, rng: np.random.Generator, n_images: int) -> tuple:
        """(damage pixels per image, difficulty per image)."""
        share = rng.beta(self.damage_a, self.damage_b, n_images)
        return rng.binomial(PIXELS, share), rng.normal(0., self.image_sd, n_images)

    def run_effects(self, rng: np.random.Generator, shape) -> np.ndarray:
        return rng.normal(0., self.seed_sd, shape) if self.seed_sd else np.zeros(shape)

    def confusions(self, rng: np.random.Generator, damage: np.ndarray,
                   difficulty: np.ndarray, quality: np.ndarray) -> np.ndarray:
        """(..., N, 2, 2) per-image confusions of runs of quality ``quality`` (...)."""
        quality = np.asarray(quality, dtype=np.float64)[..., None]
        noise = rng.normal(0., self.noise_sd, quality.shape[:-1] + damage.shape)
        skill = quality - difficulty + noise
        recall = 1 / (1 + np.exp(-(0.5 + skill)))
        false_alarm = 1 / (1 + np.exp(-(-2.5 - 0.5 * skill)))
        tp = rng.binomial(damage, recall)
        fp = rng.binomial(PIXELS - damage, false_alarm)
        conf = np.empty(tp.shape + (2, 2), dtype=np.int64)
        conf[..., 0, 0] = PIXELS - damage - fp
        conf[..., 0, 1] = fp
        conf[..., 1, 0] = damage - tp
        conf[..., 1, 1] = tp
        return conf

    def population_miou(self, quality: float, n_images: int = 200000,
                        seed: int = 12345) -> float:
        """The mIoU of a run of ``quality`` on the whole image population (its truth)."""
        rng = np.random.default_rng(seed)
        damage, difficulty = self.images(rng, n_images)
        conf = self.confusions(rng, damage, difficulty, np.asarray(quality)).sum(axis=0)
        return float(mean_iou(conf))


def _pairs(n_models: int):
    return [(i, j) for i in range(n_models) for j in range(i + 1, n_models)]


def null_rejection_rates(n_images: int, reps: int = 500, n_models: int = 4,
                         alpha: float = 0.05, n_boot: int = 1000, n_perm: int = 2000,
                         seed: int = 0, study: Optional[SimulatedStudy] = None
                         ) -> Dict[str, float]:
    """Checkpoint level, no true difference: how often the tests cry wolf.

    Each replication draws ``n_images`` images and one checkpoint each of
    ``n_models`` exchangeable models. 'pair': share of replications where the
    first pair's :func:`paired_test` p < alpha; 'familywise': share where Holm
    over all pairs rejects any.
    """
    study = study or SimulatedStudy()
    rng = np.random.default_rng(seed)
    pair_hits = family_hits = 0
    for rep in range(reps):
        damage, difficulty = study.images(rng, n_images)
        confs = study.confusions(rng, damage, difficulty, np.zeros(n_models))
        p_values = [paired_test(confs[i], confs[j], 'mIoU', alpha, n_boot, n_perm,
                                seed=rep)['p_value'] for i, j in _pairs(n_models)]
        pair_hits += p_values[0] < alpha
        family_hits += bool((holm_adjust(p_values) < alpha).any())
    return dict(pair=pair_hits / reps, familywise=family_hits / reps)


def seed_level_rejection_rate(n_images: int = 10, n_seeds: int = 3, reps: int = 500,
                              alpha: float = 0.05, n_boot: int = 1000, seed: int = 0,
                              study: Optional[SimulatedStudy] = None) -> Dict[str, float]:
    """Two equal encoders, ``n_seeds`` runs each: how often the seed-aware test rejects.

    Also returns what the simulated runs looked like (the between-seed SD of
    mIoU, root mean square over the models, and the mean image-level SE of the
    paired difference, in points) and how
    often a checkpoint-level test of two single runs would have rejected.
    """
    study = study or SimulatedStudy(seed_sd=0.19)
    rng = np.random.default_rng(seed)
    hits = checkpoint_hits = 0
    seed_sds, image_ses = [], []
    for rep in range(reps):
        damage, difficulty = study.images(rng, n_images)
        quality = study.run_effects(rng, (2, n_seeds))
        confs = study.confusions(rng, damage, difficulty, quality)  # (2, S, N, 2, 2)
        result = paired_test(confs[0], confs[1], 'mIoU', alpha, n_boot, seed=rep)
        hits += result['p_value'] < alpha
        seed_sds += [result['seed_sd_a'] ** 2, result['seed_sd_b'] ** 2]
        image_ses.append(result['image_se'])
        single = paired_test(confs[0, 0], confs[1, 0], 'mIoU', alpha, n_boot, seed=rep)
        checkpoint_hits += single['p_value'] < alpha
    return dict(rate=hits / reps, checkpoint_test_rate=checkpoint_hits / reps,
                seed_sd_points=100 * float(np.sqrt(np.mean(seed_sds))),
                image_se_points=100 * float(np.mean(image_ses)))


def interval_coverage(n_images: int, reps: int = 500, alpha: float = 0.05,
                      n_boot: int = 1000, seed: int = 0, n_seeds: int = 1,
                      study: Optional[SimulatedStudy] = None) -> Dict[str, float]:
    """How often the intervals hold the truth.

    One seed: a fixed checkpoint (quality 0) on ``n_images`` fresh images; its
    truth is its mIoU on the whole image population; 'expanded' and 'percentile'
    are the two bootstrap intervals of :func:`bootstrap_ci`, 'difference' the
    :func:`paired_test` interval of it against a checkpoint of quality -0.2.
    Several seeds: a training configuration whose runs vary (seed_sd 0.19), its
    truth the mean population mIoU over runs; 'seeds' is
    :func:`model_interval`'s interval.
    """
    rng = np.random.default_rng(seed)
    if n_seeds > 1:
        study = study or SimulatedStudy(seed_sd=0.19)
        draws = study.run_effects(np.random.default_rng(seed + 1), 400)
        truth = float(np.mean([study.population_miou(q, 20000) for q in draws]))
        hits = 0
        for rep in range(reps):
            damage, difficulty = study.images(rng, n_images)
            confs = study.confusions(rng, damage, difficulty,
                                     study.run_effects(rng, n_seeds))
            ci = model_interval(confs, mean_iou, n_boot, rep, alpha)
            hits += ci['low'] <= truth <= ci['high']
        return dict(seeds=hits / reps)
    study = study or SimulatedStudy()
    truth_a, truth_b = study.population_miou(0.), study.population_miou(-0.2)
    hits = dict(expanded=0, percentile=0, difference=0)
    for rep in range(reps):
        damage, difficulty = study.images(rng, n_images)
        confs = study.confusions(rng, damage, difficulty, np.array([0., -0.2]))
        classes = present_classes(confs[0])
        for method in ('expanded', 'percentile'):
            ci = bootstrap_ci(confs[0], mean_iou, n_boot, rep, alpha, method, classes)
            hits[method] += ci['low'] <= truth_a <= ci['high']
        diff = paired_test(confs[0], confs[1], 'mIoU', alpha, n_boot, 200, rep)
        hits['difference'] += diff['low'] <= truth_a - truth_b <= diff['high']
    return {key: value / reps for key, value in hits.items()}
