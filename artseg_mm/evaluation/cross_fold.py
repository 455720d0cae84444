"""Leave-one-group-out results: per held-out group and over folds, with intervals.

A fold run (``tools/misc/make_folds.py`` split files) tests a model on one group it never
trained on (a material or a content type). Per group the interval is the image bootstrap
of that fold; over folds the estimate is the mean of the folds' metrics and its interval
the two-level bootstrap of :func:`cross_fold_ci` (folds, then images within them). With a
handful of groups that interval is wide: it says how little a few held-out groups settle.
"""
import csv
import json
import os.path as osp
from typing import Callable, Dict, List

import numpy as np

from .functional import bootstrap_ci, cross_fold_ci

OVERALL = 'mean over folds'


def _pct(value: float):
    return None if value is None or np.isnan(value) else round(100 * float(value), 2)


def summarize_folds(results: Dict[str, Dict[str, np.ndarray]], stats: Dict[str, Callable],
                    n_boot: int = 10000, seed: int = 0, alpha: float = 0.05) -> List[dict]:
    """Rows ``model, group, n_images, <stat>, <stat>_ci_low, <stat>_ci_high``, in %.

    ``results`` maps model -> held-out group -> that fold's (N, C, C) per-image confusions;
    each model gets one row per group and one ``OVERALL`` row.
    """
    rows = []
    for model, folds in results.items():
        if len(folds) < 2:
            raise ValueError(f'{model}: {len(folds)} fold(s) ({sorted(folds)}); the '
                             'cross-fold mean needs every fold of the protocol')
        for group, confs in folds.items():
            row = dict(model=model, group=group, n_images=int(len(confs)))
            for name, stat_fn in stats.items():
                ci = bootstrap_ci(confs, stat_fn, n_boot, seed, alpha)
                row.update({name: _pct(ci['estimate']), f'{name}_ci_low': _pct(ci['low']),
                            f'{name}_ci_high': _pct(ci['high'])})
            rows.append(row)
        row = dict(model=model, group=OVERALL,
                   n_images=int(sum(len(confs) for confs in folds.values())))
        for name, stat_fn in stats.items():
            ci = cross_fold_ci(list(folds.values()), stat_fn, n_boot, seed, alpha)
            row.update({name: _pct(ci['estimate']), f'{name}_ci_low': _pct(ci['low']),
                        f'{name}_ci_high': _pct(ci['high'])})
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
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = ['model', f'held-out {holdout_key}', 'test images'] + [
        f'{name} [{level}% CI]' for name in stats]
    lines = [f'# Leave-one-{holdout_key}-out', '',
             f'Each {holdout_key} is the test split of the fold that never trained on it '
             f'(interval: bootstrap over its images). "{OVERALL}": the mean of the folds, '
             f'interval from resampling folds and the images within them ({n_boot} '
             'resamples).', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [row['model'], row['group'], str(row['n_images'])] + [
            f"{row[name]} [{row[name + '_ci_low']}, {row[name + '_ci_high']}]"
            for name in stats]
        lines.append('| ' + ' | '.join(cells) + ' |')
    with open(osp.join(out, 'folds.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return [osp.join(out, name) for name in ('folds.csv', 'folds.json', 'folds.md')] + [
        plot_folds(rows, stats[0], holdout_key, out, level)]


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
        ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width,
               yerr=np.vstack([values - low, high - values]), capsize=3, label=model)
    ax.axvline(len(groups) - 1.5, color='grey', lw=0.8, ls='--')
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=20, ha='right')
    ax.set_ylabel(f'{stat} (%)')
    ax.set_xlabel(f'held-out {holdout_key}')
    ax.set_title(f'Leave-one-{holdout_key}-out {stat}, {level}% bootstrap CI')
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    path = osp.join(out, 'folds.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
