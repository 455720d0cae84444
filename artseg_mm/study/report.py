"""Tables and figures of a comparison: markdown/CSV/JSON tables, bar charts with
intervals, per-class bars, confusion matrices and a prediction grid.

The rows come from :mod:`artseg_mm.study.comparison`; everything is written
to ``options.out``.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from .comparison import STATS, Run, comparison_level
from ..evaluation.statistics import MIN_RELIABLE_IMAGES
from ..visualization.blend import blend_classes
from .flops import FLOPS_SIZE, gflops_header


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


def _p(value: float) -> str:
    return 'n/a' if value is None or value != value else (
        '< 0.0001' if value < 1e-4 else f'{value:.4f}')


def comparison_level_text(rows: List[dict]) -> str:
    """:func:`comparison_level` from the table rows (runs per model)."""
    return comparison_level({row['model']: row['runs'] for row in rows})


def unlike_banner(options) -> List[str]:
    """Lines naming the settings the compared runs differ in (``--allow-unlike``)."""
    if not options.unlike:
        return []
    return (['**Unlike runs** (--allow-unlike): the models differ in more than the encoder, '
             'so differences below are not the encoder\'s alone:', '']
            + [f'- {setting}' for setting in options.unlike] + [''])


def unlike_title(options) -> str:
    """A figure-title suffix for unlike runs ('' otherwise)."""
    if not options.unlike:
        return ''
    shown = '; '.join(options.unlike[:2]) + ('; ...' if len(options.unlike) > 2 else '')
    return f'\nUNLIKE RUNS: {shown}'


def write_tables(rows: List[dict], pairs: List[dict], binary: bool, options) -> None:
    import csv
    level = round(100 * (1 - options.alpha))
    with open(osp.join(options.out, 'comparison.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(models=rows, pairwise=pairs, n_boot=options.n_boot, alpha=options.alpha,
                       seed=options.seed, flops_input=list(FLOPS_SIZE),
                       unlike_settings=list(options.unlike)), f, indent=2)
    fields = [k for k in rows[0] if k not in ('checkpoints', 'seeds')]
    with open(osp.join(options.out, 'comparison.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields + ['seeds'], extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, 'seeds': ' '.join(str(s) for s in row['seeds'])})
    with open(osp.join(options.out, 'pairwise.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=['model_a', 'model_b', 'metric', 'diff', 'ci_low',
                                               'ci_high', 'ci_excludes_0', 'p_value', 'p_holm',
                                               'significant', 'level', 'method'])
        writer.writeheader()
        writer.writerows(pairs)

    header = ['model', 'encoder', 'decoder', 'runs', f'mIoU [{level}% CI]']
    if binary:
        header.append(f'damage IoU [{level}% CI]')
    header += ['mDice', 'params (M)', gflops_header(), 'inference (s/img)', 'training time']
    lines = ['# Model comparison', ''] + unlike_banner(options) + [
             comparison_level_text(rows), '',
             f'{rows[0]["n_images"]} test images. A model with one run: its value on them and '
             'an expanded percentile bootstrap interval over images '
             f'({options.n_boot} resamples, seed {options.seed}; approximate with few images: '
             'tools/analysis_tools/check_statistics.py measures its coverage). A model with '
             'several runs: the mean over seeds (± their standard deviation) with a t interval '
             'that holds the images and the spread between seeds. mIoU averages the classes '
             'with ground truth in the test split. '
             'Inference: median per image, warm, batch 1, on ' + str(options.device) + '.', '',
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
        if row.get('damage_IoU_note'):
            notes.append(f"{row['model']}: damage IoU {row['damage_IoU_note']}")
        if row['infer_timed_images'] < row['n_images']:
            notes.append(f"{row['model']}: inference timed on {row['infer_timed_images']} "
                         'images (the predictions are its tools/test.py results)')
        cells += [_fmt(row['mDice']), _fmt(row['params_m']), gflops,
                  _fmt(row['infer_s_per_img'], 3), _duration(row['train_time_s'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [''] + [f'- {note}' for note in notes] + ([''] if notes else [])
    lines += ['## Pairwise differences (A - B, on the same images)', ''] + unlike_banner(options)
    if pairs:
        lines += ['Tests: where both models have one run, an exact paired randomisation test '
                  "(the two models' per-image results swapped in every possible way; Monte Carlo "
                  'beyond 16 images) with an expanded percentile paired bootstrap interval; '
                  'where both have several runs, a Welch t test on the seed means with the '
                  'image-level and between-seed variance. Significant: Holm-adjusted p < '
                  f'{options.alpha} over the model pairs of each metric (the intervals and p are '
                  'per pair, unadjusted).', '',
                  f'| A | B | metric | diff | {level}% CI | p | p (Holm) | significant | '
                  'compares |',
                  '|---|---|---|---|---|---|---|---|---|']
        lines += [f"| {p['model_a']} | {p['model_b']} | {p['metric']} | {_fmt(p['diff'])} | "
                  f"[{_fmt(p['ci_low'])}, {_fmt(p['ci_high'])}] | {_p(p['p_value'])} | "
                  f"{_p(p['p_holm'])} | {'yes' if p['significant'] else 'no'} | {p['level']} |"
                  for p in pairs]
    else:
        lines.append('(one model: no pairs)')
    with open(osp.join(options.out, 'comparison.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


# ------------------------------------------------------------------- per class


def write_per_class(rows: List[dict], options) -> str:
    """``per_class.csv``; absent classes are empty cells with the note, never 0."""
    import csv
    path = osp.join(options.out, 'per_class.csv')
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


def plot_per_class(rows: List[dict], options) -> str:
    """Grouped bars: IoU per class (x) and model (colour) with CI error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(row['model'] for row in rows))
    classes = list(dict.fromkeys(row['cls'] for row in rows))
    by_key = {(row['model'], row['cls']): row for row in rows}
    level = round(100 * (1 - options.alpha))
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
              if all(by_key[(model, cls)]['note'].startswith('absent') for model in models)]
    for i in absent:
        ax.text(x[i], 2, 'absent', rotation=90, ha='center', va='bottom', fontsize=8,
                color='0.4')
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=45, ha='right')
    ax.set_ylim(0, 100)
    ax.set_ylabel('IoU (%)')
    for i, cls in enumerate(classes):
        if i not in absent and any(by_key[(model, cls)]['note'].startswith('unreliable')
                                   for model in models):
            ax.text(x[i], 96, f"<{MIN_RELIABLE_IMAGES} img", ha='center', va='top',
                    fontsize=7, color='firebrick')
    ax.set_title(f'IoU per class, {level}% CI ("absent": no ground truth in the split; '
                 f'"<{MIN_RELIABLE_IMAGES} img": in fewer images, interval unreliable)'
                 + unlike_title(options), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = osp.join(options.out, 'per_class_iou.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusions(groups: Dict[str, List[Run]], options) -> List[str]:
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
                     + (f' ({len(runs)} runs summed)' if len(runs) > 1 else '')
                     + unlike_title(options), fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        path = osp.join(options.out, f'confusion_{model}.png')
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_bars(rows: List[dict], groups: Dict[str, List[Run]], binary: bool, options) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metrics = ['mIoU'] + (['damage_IoU'] if binary else [])
    level = round(100 * (1 - options.alpha))
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
    ax.set_title(f'{level}% CI over {rows[0]["n_images"]} images'
                 + (' and seeds (dots: each seed)' if any(r['runs'] > 1 for r in rows) else
                    ' (one run per model: checkpoints, not encoders)')
                 + unlike_title(options), fontsize=9)
    ax.set_ylim(0, min(100, 1.15 * max(max(r[m + '_ci_high'] or 0 for r in rows)
                                       for m in metrics) + 1))
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    path = osp.join(options.out, 'metrics_bar.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_grid(groups: Dict[str, List[Run]], keep: dict, ids: List[str], options) -> str:
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
        panels = [(image, f'{key}'), (blend_classes(image, gt, palette, ~valid),
                                      'ground truth (grey: ignored)')]
        for model, run in firsts:
            pred = run.preds[key]
            acc = float(np.mean(pred[valid] == gt[valid])) * 100 if valid.any() else float('nan')
            panels.append((blend_classes(image, pred, palette, ~valid),
                           f'{model}\npixel acc {acc:.1f}%'))
        for c, (panel, title) in enumerate(panels):
            axes[r, c].imshow(panel)
            axes[r, c].set_title(title, fontsize=8)
            axes[r, c].axis('off')
    if options.unlike:
        fig.suptitle(unlike_title(options).strip(), fontsize=9, color='firebrick')
    fig.tight_layout()
    path = osp.join(options.out, 'prediction_grid.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
