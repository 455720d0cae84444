"""Checks the tools run before they build a Runner, so failures come early and clear;
the command-line options the tools share with mmseg's."""
import argparse
import glob
import logging
import os
import os.path as osp
import re
from typing import List, Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """mmseg's ``--cfg-options key=value ...``."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')


def add_launcher_options(parser: argparse.ArgumentParser) -> None:
    """mmseg's ``--launcher`` and ``--local_rank`` (see :func:`parse_launch_args`)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse, and set ``LOCAL_RANK`` from ``--local_rank`` where the launcher
    (the deprecated ``torch.distributed.launch``) did not, as mmseg's tools do."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def config_with_options(config: str, cfg_options: Optional[dict]) -> Config:
    """``Config.fromfile(config)`` with ``--cfg-options`` merged."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_run_config(config: str, launcher: str, cfg_options: Optional[dict],
                    work_dir: Optional[str]) -> Config:
    """The config of a ``tools/train.py`` / ``test.py`` run, as mmseg's tools build
    it: overrides merged, ``work_dir`` from the flag, else the config's, else
    ``./work_dirs/<config name>``."""
    cfg = config_with_options(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def check_dataset_exists(dataset_cfg: ConfigDict) -> None:
    """Build the dataset once so a missing or broken one fails before the model.

    The model is built first inside ``Runner``, and with ``pretrained=True``
    that means fetching weights; a user without the data would see a network
    error instead of the dataset's message saying how to make the data.
    """
    init_default_scope('mmseg')
    DATASETS.build(dataset_cfg)


def _step_of(path: str) -> int:
    match = re.search(r'(?:epoch|iter)_(\d+)\.pth$', osp.basename(path))
    return int(match.group(1)) if match else -1


def _loads(path: str) -> bool:
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # reported, and the caller falls back
        print_log(f'--resume: {path} cannot be loaded ({error}); skipping it.',
                  logger='current')
        return False
    return True


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should continue from, or None to start afresh.

    ``last_checkpoint`` names it; should that file be empty or point at a file
    that is missing or unreadable (a job killed by the scheduler, a disk that
    filled up), the newest ``epoch_*.pth``/``iter_*.pth`` that loads is used
    instead, and the log says so.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named and osp.isfile(named) and _loads(named):
        return named
    candidates = sorted(
        glob.glob(osp.join(work_dir, 'epoch_*.pth'))
        + glob.glob(osp.join(work_dir, 'iter_*.pth')), key=_step_of, reverse=True)
    for candidate in candidates:
        if _loads(candidate):
            print_log(f'--resume: last_checkpoint names {named!r}, which is not '
                      f'a loadable file; resuming from {candidate}.',
                      logger='current')
            return candidate
    print_log(f'--resume: no checkpoint in {work_dir}; training from scratch.',
              logger='current')
    return None


def plan_resume(cfg) -> None:
    """Set ``cfg.resume``/``cfg.load_from`` for ``--resume``, saying which file is used.

    The run's own newest complete checkpoint (:func:`find_resume_checkpoint`) wins
    over a ``load_from`` in the config (a config dump may carry one that mmseg's
    test tool wrote; resuming from it would silently restart from other weights).
    With no checkpoint of the run, ``load_from`` is resumed as mmengine does, else
    training starts from scratch for real (``resume`` off, so mmengine does not go
    looking for the file ``last_checkpoint`` names).
    """
    own = find_resume_checkpoint(cfg.work_dir)
    given = cfg.get('load_from')
    if own is not None:
        if given and osp.abspath(given) != osp.abspath(own):
            print_log(f'--resume: continuing from this run\'s checkpoint {own}; the '
                      f'config\'s load_from={given!r} is not used', logger='current',
                      level=logging.WARNING)
        cfg.load_from, cfg.resume = own, True
    elif given:
        print_log(f'--resume: {cfg.work_dir} holds no checkpoint of this run; resuming '
                  f'from the config\'s load_from={given!r}', logger='current')
        cfg.resume = True
    else:
        cfg.resume = False


def find_test_checkpoint(work_dir: str) -> str:
    """The newest ``best_*.pth`` of a work dir, else the one ``last_checkpoint`` names."""
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    if best:
        return best[-1]
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    raise FileNotFoundError(
        f'no checkpoint in {work_dir}: expected best_*.pth or a last_checkpoint '
        'file naming one. Train first (tools/train.py CONFIG).')
