"""Which checkpoint a run continues from (``--resume``) and which one a work
dir's model is tested and applied with."""
import glob
import logging
import os.path as osp
import re
from typing import Optional

import torch
from mmengine.logging import print_log


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
