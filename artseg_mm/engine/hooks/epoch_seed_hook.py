"""Per-epoch reseeding, so that a resumed run draws what an uninterrupted one draws."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmengine.registry import FUNCTIONS


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed derived from the run's seed and the epoch index."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python, numpy and torch at the start of every training epoch.

    Why it exists: mmengine seeds once at start-up and does not store the random
    state in checkpoints, so after ``--resume`` the augmentations, dropout and
    drop-path draws differ from those an uninterrupted run would have made (the
    validation loop between epochs also consumes the global generator). Seeding
    each epoch from ``(runner.seed, epoch)`` makes epoch ``e`` draw the same
    numbers whether or not the run was interrupted before it. Pair it with
    :func:`seeded_worker_init_fn` for ``num_workers > 0``.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed_everything(epoch_seed(runner.seed, runner.epoch))


@FUNCTIONS.register_module()
def seeded_worker_init_fn(worker_id: int, **kwargs) -> None:
    """Seed a dataloader worker from the seed torch gave it.

    torch derives each worker's seed from the main process's generator (which
    :class:`EpochSeedHook` sets per epoch), so workers draw differently every
    epoch yet reproducibly. mmengine's default ``worker_init_fn`` reseeds every
    worker with the same number each epoch, which repeats the augmentations of
    every epoch when workers are not persistent.
    """
    seed_everything(torch.initial_seed() % 2**32)
