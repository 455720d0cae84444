"""Time the demo training for dataloader workers x intra-op threads.

Runs ``tools/train.py`` on a demo config (default the ConvNeXt-T demo) for two
epochs without validation, once per setting, one after the other, and reports per
setting the median seconds per iteration of the last epoch (epoch 1 holds the
start-up), that epoch's total, the wall time of the whole command, and whether its
losses equal those of the first worker count with the same threads (the same
augmentations and the same model draws; other thread counts sum in another order).
The CPU demo configs take their ``num_workers`` from such a table.

    python -m benchmarks.demo_training --workers 0 1 2 --threads 1 2
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import cli
from .study_configs import REPO_ROOT
from .table import Column, markdown_table, print_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.demo_training',
        description='Time the demo training for dataloader workers x intra-op threads.')
    parser.add_argument('--config', default='configs/demo/convnext_tiny_upernet_demo.py')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='more key=value overrides for every run (e.g. the data root)')
    cli.add_out(parser)
    return parser


def train_once(config: str, workers: int, threads: int, epochs: int, work_dir: str,
               cfg_options=()) -> dict:
    """One training run; its per-iteration records of the last epoch and wall time."""
    cmd = [sys.executable, os.path.join(REPO_ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', f'train_cfg.max_epochs={epochs}',
           'train_cfg.val_interval=1000', f'train_dataloader.num_workers={workers}',
           'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1000',
           'default_hooks.checkpoint.save_last=False', *cfg_options]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f'training with {workers} workers, {threads} threads failed '
                           f'(rc {proc.returncode}):\n{proc.stderr[-3000:]}')
    rows = [json.loads(line) for path in glob.glob(
        os.path.join(work_dir, '*', 'vis_data', 'scalars.json')) for line in open(path)]
    steps = [r for r in rows if 'loss' in r]
    last = [r for r in steps if r['epoch'] == epochs]
    if not last:
        raise RuntimeError(f'{work_dir}: no iteration records of epoch {epochs}')
    return dict(wall=wall, losses=[r['loss'] for r in steps],
                median=statistics.median(r['time'] for r in last),
                data=statistics.median(r['data_time'] for r in last),
                epoch=sum(r['time'] for r in last))


@dataclass
class TrainingRow:
    """One setting: its last epoch's times and whether its losses match."""
    workers: int
    threads: int
    seconds_per_iter: float  # median of the last epoch
    data_seconds_per_iter: float
    epoch_seconds: float  # the last epoch's total
    wall_seconds: float  # the whole command
    same_losses: bool  # as with the first worker count and the same threads


def columns(first_workers: int) -> List[Column]:
    return [
        Column('dataloader workers', 'workers'), Column('intra-op threads', 'threads'),
        Column('s/iter (median, last epoch)', 'seconds_per_iter', '.3f'),
        Column('data s/iter', 'data_seconds_per_iter', '.3f'),
        Column('last epoch (s)', 'epoch_seconds', '.1f'),
        Column('wall (s)', 'wall_seconds', '.1f'),
        Column(f'losses as with {first_workers} workers',
               lambda r: 'yes' if r.same_losses else 'no')]


def time_settings(config: str, workers: Sequence[int], threads: Sequence[int], epochs: int,
                  cfg_options: Sequence[str] = ()) -> List[TrainingRow]:
    """One training per workers x threads setting, one after the other."""
    rows, first = [], {}
    table = columns(workers[0])
    for n_workers in workers:
        for n_threads in threads:
            with tempfile.TemporaryDirectory() as tmp:
                r = train_once(config, n_workers, n_threads, epochs, tmp, cfg_options)
            same = first.setdefault(n_threads, r)['losses'] == r['losses']
            rows.append(TrainingRow(n_workers, n_threads, r['median'], r['data'],
                                    r['epoch'], r['wall'], same))
            print(markdown_table(rows[-1:], table)[-1], flush=True)
    return rows


def report_lines(rows: List[TrainingRow], settings) -> List[str]:
    return [f'{settings.config}, {settings.epochs} epochs, no validation; {os.cpu_count()} '
            'logical CPUs', '', *markdown_table(rows, columns(settings.workers[0]))]


def main(argv: Optional[List[str]] = None) -> List[TrainingRow]:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    rows = time_settings(settings.config, settings.workers, settings.threads,
                         settings.epochs, settings.cfg_options)
    print_report(report_lines(rows, settings), cli.command('demo_training', argv),
                 settings.out)
    return rows


if __name__ == '__main__':
    main()
