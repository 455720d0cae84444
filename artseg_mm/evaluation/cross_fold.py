"""Leave-one-group-out results: per held-out group and over folds, with intervals.

A fold run (``tools/misc/make_folds.py`` split files) tests a model on one group it never
trained on (a material or a content type). Per group the interval is the image bootstrap
of that fold (:func:`~artseg_mm.evaluation.statistics.model_interval`); over folds the
estimate is the mean of the fold values and its interval the t(k-1) interval of those
values (:func:`~artseg_mm.evaluation.statistics.fold_mean_ci`), which treats the folds as
a sample of groups. Every fold is scored on the protocol's class set (the classes with
ground truth in any fold): a fold that lacks one has its means undefined and is left out
of their mean, and the table names which folds each mean uses.
"""
import csv
import json
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from .functional import present_classes, statistic
from .statistics import as_seed_stack, fold_mean_ci, model_interval, subset_note

OVERALL = 'mean over folds'


def _pct(value: float):
    return None if value is None or np.isnan(value) else round(100 * float(value), 2)


def summarize_folds(results: Dict[str, Dict[str, np.ndarray]], stats: Dict[str, object],
                    classes: Sequence[str], n_boot: int = 10000, seed: int = 0,
                    alpha: float = 0.05) -> List[dict]:
    """Rows ``model, group, n_images, <stat>, <stat>_ci_low, <stat>_ci_high, note``, in %.

    ``results`` maps model -> held-out group -> that fold's (N, C, C) (or (S, N, C, C))
    per-image confusions; ``classes`` names the classes. Each model gets one row per
    group and one ``OVERALL`` row (mean, t(k-1) interval, and ``<stat>_folds``: which
    folds the mean uses).
    """
    rows = []
    for model, folds in results.items():
        if len(folds) < 2:
            raise ValueError(f'{model}: {len(folds)} fold(s) ({sorted(folds)}); the '
                             'cross-fold mean needs every fold of the protocol')
        stacks = {group: as_seed_stack(confs, f'fold {group}') for group, confs in folds.items()}
        protocol = present_classes(np.concatenate([c[0] for c in stacks.values()]))
        values: Dict[str, Dict[str, float]] = {name: {} for name in stats}
        for group, confs in stacks.items():
            row = dict(model=model, group=group, n_images=int(confs.shape[1]))
            for name, stat_fn in stats.items():
                ci = model_interval(confs, statistic(stat_fn), n_boot, seed, alpha,
                                    classes=protocol)
                values[name][group] = ci['estimate']
                row.update({name: _pct(ci['estimate']), f'{name}_ci_low': _pct(ci['low']),
                            f'{name}_ci_high': _pct(ci['high'])})
            row['note'] = subset_note(confs[0], classes, protocol)
            rows.append(row)
        row = dict(model=model, group=OVERALL,
                   n_images=int(sum(confs.shape[1] for confs in stacks.values())))
        for name in stats:
            ci = fold_mean_ci(list(values[name].values()), alpha)
            left_out = [group for group, value in values[name].items() if np.isnan(value)]
            row.update({name: _pct(ci['estimate']), f'{name}_ci_low': _pct(ci['low']),
                        f'{name}_ci_high': _pct(ci['high']),
                        f'{name}_folds': f'{ci["n_folds"]} of {len(stacks)}' + (
                            f' (left out, undefined: {", ".join(left_out)})' if left_out
                            else '')})
        row['note'] = ''
        rows.append(row)
    return rows


def write_fold_report(rows: List[dict], stats: List[str], holdout_key: str, out: str,
                      n_boot: int, alpha: float) -> List[str]:
    """``folds.csv``, ``folds.json``, ``folds.md`` and the chart ``folds.png`` in ``out``."""
    level = round(100 * (1 - alpha))
    with open(osp.join(out, 'folds.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(holdout_key=holdout_key, rows=rows, n_boot=n_boot, alpha=alpha), f,
                  indent=2)
    with open(osp.join(out, 'folds.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    header = ['model', f'held-out {holdout_key}', 'test images'] + [
        f'{name} [{level}% CI]' for name in stats] + ['note']
    lines = [f'# Leave-one-{holdout_key}-out', '',
             f'Each {holdout_key} is the test split of the fold that never trained on it '
             f'(interval: expanded percentile bootstrap over its images, {n_boot} '
             f'resamples). "{OVERALL}": the mean of the fold values, each held-out '
             f'{holdout_key} counted once, with the t(k-1) interval of those values (k '
             f'folds); a fold lacking a class is left out of the means it cannot define, '
             'as the row says.', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [row['model'], row['group'], str(row['n_images'])] + [
            f"{_cell(row[name])} [{_cell(row[name + '_ci_low'])}, "
            f"{_cell(row[name + '_ci_high'])}]" for name in stats]
        if row['group'] == OVERALL:
            note = '; '.join(f"{name} over {row[name + '_folds']} folds" for name in stats)
        else:
            note = row['note']
        lines.append('| ' + ' | '.join(cells + [note]) + ' |')
    with open(osp.join(out, 'folds.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return [osp.join(out, name) for name in ('folds.csv', 'folds.json', 'folds.md')] + [
        plot_folds(rows, stats[0], holdout_key, out, level)]


def _cell(value) -> str:
    return 'n/a' if value is None else f'{value:.2f}'


def plot_folds(rows: List[dict], stat: str, holdout_key: str, out: str, level: int) -> str:
    """Bars of ``stat`` per held-out group (and the mean over folds) and model, with CIs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(row['model'] for row in rows))
    groups = list(dict.fromkeys(row['group'] for row in rows if row['group'] != OVERALL))
    groups.append(OVERALL)
    by_key = {(row['model'], row['group']): row for row in rows}
    x = np.arange(len(groups))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups) * max(1, len(models) / 2) + 2),
                                    4.5))
    for k, model in enumerate(models):
        def column(key):  # every model has every group (compare checks it); None: NaN
            return np.array([by_key[model, group][key] for group in groups], dtype=float)
        values, low, high = (column(stat + suffix) for suffix in ('', '_ci_low', '_ci_high'))
        flagged = [bool(by_key[model, group]['note']) for group in groups]
        bars = ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width,
                      yerr=np.vstack([values - low, high - values]), capsize=3, label=model)
        for bar, flag in zip(bars, flagged):
            if flag:  # few images or a class absent: see the table's note
                bar.set_hatch('//')
    ax.axvline(len(groups) - 1.5, color='grey', lw=0.8, ls='--')
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=20, ha='right')
    ax.set_ylabel(f'{stat} (%)')
    ax.set_xlabel(f'held-out {holdout_key}')
    ax.set_title(f'Leave-one-{holdout_key}-out {stat}: {level}% CI, per fold over its '
                 'images,\nthe mean over folds t(k-1); hatched: flagged fold (see table)',
                 fontsize=9)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    path = osp.join(out, 'folds.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
