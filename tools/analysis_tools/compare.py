"""Compare trained segmentors: metrics with bootstrap CIs, significance, cost, pictures.

Each WORK_DIR is what mmengine's Runner writes for one training run: the config
dump ``<work_dir>/<config name>.py``, checkpoints (``best_*.pth``, else the one
``last_checkpoint`` names) and logs ``<work_dir>/<timestamp>/vis_data/scalars.json``.
For every run the model is rebuilt from the dumped config, its checkpoint
loaded with ``weights_only=True``, and it predicts the split of the config's
``test_dataloader``; :class:`ArtSegMetric` writes the run's per-image
confusions (``<out>/runs/<run>/per_image.json``), which all statistics here
are computed from. Runs whose configs differ only by seed (the same config
name, or names differing by a ``_seed<N>`` suffix) are one model, and the seeds
a level of the study: its value is the mean over seeds (± their standard
deviation) and its intervals and tests hold the spread between seeds as well as
the images (:func:`artseg_mm.evaluation.paired_test`). A model with one run is
compared as a checkpoint, and the tables say so. Runs of one name whose configs
differ in anything else (epochs, data, crop, ...), or that repeat a seed, are
refused with the settings that differ; so are models whose runs differ in more
than the model (data root and split files, crop, schedule, epochs, loss,
augmentation), unless ``--allow-unlike`` makes it a labelled comparison of
unlike runs (exit 2 and the settings named otherwise).

Writes to ``--out``:

* ``comparison.{csv,json,md}``: per model mIoU [95% CI], damage IoU [CI]
  (binary classes), mDice, aAcc, parameters, FLOPs at 512x512, median
  inference time per image, training time (from the logs), and what the
  intervals are about (checkpoints or training runs);
* ``pairwise.csv`` (also in the .md/.json): every pairwise mIoU (and damage
  IoU) difference with its interval and p-value (an exact paired randomisation
  test over images for single runs, a seed-aware Welch t test for several),
  the Holm-adjusted p-value over the model pairs of that metric, and whether
  it is significant after that adjustment (with k models there are k(k-1)/2
  chances of a false positive);
* ``metrics_bar.png``: mIoU and damage IoU per model with CI error bars;
* ``per_class.csv``, ``per_class_iou.png``: per model and class, IoU and Dice
  with intervals, ground-truth pixels and images; a class absent from the test
  split is NaN with the reason, never 0 or 100, and one whose ground truth is in
  fewer than 5 images is flagged unreliable;
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
images) and the mean over folds with the t(k-1) interval of the fold values; folds with
fewer than 5 images or a class absent are flagged, and the mean row says which folds it
uses.

Example::

    python tools/analysis_tools/compare.py work_dirs/convnext_tiny_upernet_demo \
        work_dirs/swin_tiny_upernet_demo --out work_dirs/analysis_demo/compare
"""
import argparse
import os
import sys
from dataclasses import fields

from mmengine.config import DictAction

import artseg_mm  # noqa: F401  (registers modules, the weights-only checkpoint loader)
from artseg_mm.study import report
from artseg_mm.study.comparison import (ComparisonOptions, UnlikeRunsError,
                                           check_like_runs, check_same_images,
                                           choose_images, compare_folds, evaluate_run,
                                           group_runs, load_runs, pairwise,
                                           per_class_results, summarize)
from artseg_mm.evaluation.artseg_metric import is_binary_damage


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
        '--allow-unlike', action='store_true',
        help='compare models whose runs differ in more than the model (data, split files, '
        'crop, schedule, epochs, loss, augmentation, ...); refused without it. The settings '
        'that differ are printed above every table and in the figure titles')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='overrides applied to every dumped config, e.g. '
        'test_dataloader.dataset.data_root=data/artefact_demo')
    return parser.parse_args(argv)



def main(argv=None) -> int:
    args = parse_args(argv)
    if args.images < 1:
        raise ValueError(f'--images must be >= 1, got {args.images}')
    options = ComparisonOptions(**{f.name: getattr(args, f.name)
                                   for f in fields(ComparisonOptions) if hasattr(args, f.name)})
    runs = load_runs(args.work_dirs, args.cfg_options)
    if args.folds:
        os.makedirs(args.out, exist_ok=True)
        return compare_folds(runs, options)
    groups = group_runs(runs)
    try:
        options.unlike = check_like_runs(groups, args.allow_unlike)
    except UnlikeRunsError as error:
        print(f'compare.py: {error}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    keep: dict = {}
    for run in runs:
        evaluate_run(run, options, keep)
    check_same_images(runs)
    binary = is_binary_damage(runs[0].per_image['classes'])
    rows = summarize(groups, binary, options)
    pairs = pairwise(groups, binary, options)
    report.write_tables(rows, pairs, binary, options)
    bar = report.plot_bars(rows, groups, binary, options)
    class_rows = per_class_results(groups, options)
    report.write_per_class(class_rows, options)
    per_class = report.plot_per_class(class_rows, options)
    confusions = report.plot_confusions(groups, options)
    grid = report.plot_grid(groups, keep, choose_images(groups, keep, options), options)
    print(f'written: {args.out}/comparison.{{csv,json,md}}, pairwise.csv, per_class.csv, '
          f'{bar}, {per_class}, {", ".join(confusions)}, {grid}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
