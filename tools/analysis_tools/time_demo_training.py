"""Time the demo training for dataloader workers x intra-op threads.

Runs ``tools/train.py`` on a demo config (default the ConvNeXt-T demo) for two
epochs without validation, once per setting, one after the other, and prints per
setting the median seconds per iteration of epoch 2 (epoch 1 holds the start-up),
epoch 2's total, the wall time of the whole command, and whether its losses equal
those of the first worker count with the same threads (the same augmentations
and the same model draws; other thread counts sum in another order).
The CPU demo configs take their ``num_workers`` from such a table.

Example::

    python tools/analysis_tools/time_demo_training.py --workers 0 1 2 --threads 1 2
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

from artseg_mm.analysis.timing import print_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/demo/convnext_tiny_upernet_demo.py')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='more key=value overrides for every run (e.g. the data root)')
    parser.add_argument('--out', help='write the markdown table here too')
    return parser.parse_args(argv)


def train_once(config: str, workers: int, threads: int, epochs: int, work_dir: str,
               cfg_options=()) -> dict:
    """One training run; its per-iteration records of the last epoch and wall time."""
    cmd = [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', f'train_cfg.max_epochs={epochs}',
           'train_cfg.val_interval=1000', f'train_dataloader.num_workers={workers}',
           'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1000',
           'default_hooks.checkpoint.save_last=False', *cfg_options]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
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


def main(argv=None):
    args = parse_args(argv)
    rows, first = [], {}
    header = [f'{args.config}, {args.epochs} epochs, no validation; {os.cpu_count()} '
              'logical CPUs', '',
              '| dataloader workers | intra-op threads | s/iter (median, last epoch) | '
              'data s/iter | last epoch (s) | wall (s) | losses as with '
              f'{args.workers[0]} workers |',
              '|---|---|---|---|---|---|---|']
    for workers in args.workers:
        for threads in args.threads:
            with tempfile.TemporaryDirectory() as tmp:
                r = train_once(args.config, workers, threads, args.epochs, tmp,
                               args.cfg_options)
            same = first.setdefault(threads, r)['losses'] == r['losses']
            rows.append(f'| {workers} | {threads} | {r["median"]:.3f} | {r["data"]:.3f} | '
                        f'{r["epoch"]:.1f} | {r["wall"]:.1f} | {"yes" if same else "no"} |')
            print(rows[-1], flush=True)
    print_report([*header, *rows], 'python tools/analysis_tools/time_demo_training.py '
                 + ' '.join(argv or sys.argv[1:]), args.out)


if __name__ == '__main__':
    main()
