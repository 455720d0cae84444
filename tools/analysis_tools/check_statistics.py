"""Check the comparison's statistics on simulated data: false-positive rates, coverage.

The simulated study (:mod:`artseg_mm.evaluation.calibration`) is binary damage
segmentation with per-image confusions; under its null every model is drawn from
the same distribution. For each number of test images it prints

* how often the paired test of two exchangeable checkpoints gives p < alpha
  (should be about alpha),
* how often Holm over the 6 pairs of 4 exchangeable models rejects any (at most alpha),
* how often the 95% intervals hold the truth: one checkpoint's mIoU (expanded and
  plain percentile bootstrap), a difference of two checkpoints, and a training
  configuration's mean mIoU over 3 seeds,

and, for two equal encoders with 3 seeds each (between-seed SD about 3 mIoU points),
how often the seed-aware test rejects, against a test of one checkpoint each.

Example::

    python tools/analysis_tools/check_statistics.py --images 10 30 100 --reps 500
"""
import argparse
import sys
import time

from tqdm import tqdm

from artseg_mm.evaluation.calibration import (interval_coverage, null_rejection_rates,
                                              seed_level_rejection_rate)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, nargs='+', default=[10, 30, 100],
                        help='numbers of test images to simulate')
    parser.add_argument('--reps', type=int, default=500, help='replications per number')
    parser.add_argument('--seeds', type=int, default=3, help='training runs per model '
                        'in the seed-level checks')
    parser.add_argument('--seed', type=int, default=0, help='seed of the simulation')
    parser.add_argument('--out', help='also write the table (markdown) here')
    args = parser.parse_args(argv)
    if args.reps < 10 or min(args.images) < 2 or args.seeds < 2:
        parser.error('--reps must be >= 10, --images >= 2 and --seeds >= 2')
    return args


def _pct(value: float) -> str:
    return f'{100 * value:.1f}%'


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    rows = []
    for n_images in tqdm(args.images, desc='simulating', unit='size'):
        null = null_rejection_rates(n_images, args.reps, seed=args.seed)
        cover = interval_coverage(n_images, args.reps, seed=args.seed)
        seeds = interval_coverage(n_images, args.reps, seed=args.seed, n_seeds=args.seeds)
        rows.append((n_images, null, cover, seeds))
    retrain = seed_level_rejection_rate(10, args.seeds, args.reps, seed=args.seed)
    lines = [
        f'Simulated null (no true difference), {args.reps} replications per row, seed '
        f'{args.seed}; alpha 0.05, 95% intervals.', '',
        '| test images | paired test p < 0.05 | any Holm rejection, 4 models | '
        'coverage: one model, expanded | one model, plain percentile | difference of two | '
        f'{args.seeds} seeds, mean |',
        '|---|---|---|---|---|---|---|']
    for n_images, null, cover, seeds in rows:
        lines.append(f'| {n_images} | {_pct(null["pair"])} | {_pct(null["familywise"])} | '
                     f'{_pct(cover["expanded"])} | {_pct(cover["percentile"])} | '
                     f'{_pct(cover["difference"])} | {_pct(seeds["seeds"])} |')
    lines += [
        '',
        f'Two equal encoders, {args.seeds} seeds each, 10 images (between-seed SD of mIoU '
        f'{retrain["seed_sd_points"]:.1f} points, image-level paired SE '
        f'{retrain["image_se_points"]:.1f}): the seed-aware test rejects in '
        f'{_pct(retrain["rate"])} of replications; a test of one checkpoint of each would '
        f'call them different in {_pct(retrain["checkpoint_test_rate"])}.',
        '', f'({time.time() - start:.0f} s)']
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
