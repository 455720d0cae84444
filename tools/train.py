"""Train a segmentor: mmseg's ``tools/train.py`` with the same flags, plus

* a data check before the model is built (a missing dataset is reported with
  how to make one, not after pretrained weights were fetched);
* ``--amp`` that works everywhere: fp16 AMP on CUDA, bf16 autocast on a CPU with
  bf16 kernels, otherwise fp32 with a message;
* ``--launcher pytorch`` on CPU-only machines (gloo), as ``dist_train.sh`` uses;
* ``--resume`` that continues from the run's own newest complete checkpoint and says
  which file it uses (not a ``load_from`` the config carries);
* ``--tensorboard``: TensorBoard events beside the local scalar logs;
* ``--dry-run``: the preflight check (data, class weights, pretrained weights,
  device, disk, a few timed steps) and the run's plan, without training;
* one message and exit 2, before any work, for a missing data root or pretrained
  weights that cannot be read (a node without internet).
"""
import argparse
import sys

from mmengine.runner import Runner

import artseg_mm  # noqa: F401  (registers modules, the weights-only checkpoint loader)
from artseg_mm.engine import close_distributed, prepare_cpu_distributed
from artseg_mm.engine.optim_wrapper import enable_amp
from artseg_mm.checkpoints import plan_resume
from artseg_mm.cli import (add_cfg_options, add_launcher_options, check_dataset_exists,
                           check_fine_tune_weights, check_pretrained_weights,
                           load_run_config, parse_launch_args)
from artseg_mm.engine.preflight import run_preflight
from artseg_mm.models.backbones.pretrained_weights import PretrainedWeightsUnavailable
from artseg_mm.visualization.backends import add_tensorboard
from mmseg.registry import RUNNERS


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='mixed precision: fp16 on CUDA, bf16 on a CPU that supports it')
    parser.add_argument(
        '--tensorboard', action='store_true', default=False,
        help='also write TensorBoard events (<work_dir>/<timestamp>/vis_data); '
        'needs pip install -e ".[tensorboard]"')
    parser.add_argument(
        '--dry-run', action='store_true', default=False,
        help='check data, class weights, pretrained weights, device, AMP and disk, time a '
        'few training steps and print the plan, without training (exit 1 if a check fails)')
    add_cfg_options(parser)
    add_launcher_options(parser)
    return parse_launch_args(parser)


def main():
    args = parse_args()

    cfg = load_run_config(args.config, args.launcher, args.cfg_options, args.work_dir)

    if args.dry_run:
        report = run_preflight(cfg, amp=args.amp)
        print('\n'.join(report.lines()))
        sys.exit(0 if report.passed else 1)
    try:
        if not args.resume:  # a resumed run continues from its own checkpoint
            check_fine_tune_weights(cfg, args.config)
        check_dataset_exists(cfg.train_dataloader.dataset)
        # a resumed run too: the model is built (and its pretrained weights read)
        # before the checkpoint is loaded over them
        check_pretrained_weights(cfg)
    except (ValueError, FileNotFoundError, PretrainedWeightsUnavailable) as error:
        print(f'train: {error}', file=sys.stderr)
        sys.exit(2)
    if args.amp:
        enable_amp(cfg)
    if args.tensorboard:
        add_tensorboard(cfg)
    prepare_cpu_distributed(cfg)

    cfg.resume = args.resume
    if args.resume:
        plan_resume(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.train()
    del runner  # DDP holds the process group: release it first
    close_distributed()


if __name__ == '__main__':
    main()
