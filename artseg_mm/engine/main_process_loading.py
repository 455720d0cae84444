"""Data loading in the main process that draws what one worker process draws."""
import random
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.worker import _generate_state


def capture_random_state() -> tuple:
    """The global generators of Python, numpy and torch (CPU, and CUDA once used)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def restore_random_state(state: tuple) -> None:
    python, numpy, torch_cpu, cuda = state
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(torch_cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def worker_zero_random_state(base_seed: int,
                             worker_init_fn: Optional[Callable[[int], None]]) -> tuple:
    """The generators' state in worker 0 of a loader iterator with ``base_seed``:
    torch's seeding of a worker, then ``worker_init_fn(0)``. The caller's state
    is left as it was."""
    caller = capture_random_state()
    try:
        random.seed(base_seed)
        torch.manual_seed(base_seed)
        np.random.seed(_generate_state(base_seed, 0))
        if worker_init_fn is not None:
            worker_init_fn(0)
        return capture_random_state()
    finally:
        restore_random_state(caller)


class WorkerSeededDataLoader(DataLoader):
    """torch's ``DataLoader`` whose ``num_workers=0`` draws the augmentations that
    worker 0 of a one-worker loader draws.

    Why it exists: on a CPU machine with few cores a data worker process competes
    with the training's own threads, and loading in the main process is faster.
    But torch seeds a worker from the iterator's base seed and runs
    ``worker_init_fn`` there, while main-process loading draws from the
    generators the model's dropout and drop path share. Here the pipeline gets
    generators of its own, seeded as worker 0's are, swapped in around every
    fetch: a run trains the same with ``num_workers`` 0 or 1, and the model's
    draws do not depend on the data's. With workers it is torch's loader.
    """

    def _get_iterator(self):
        iterator = super()._get_iterator()
        if self.num_workers > 0:
            return iterator
        # torch's single-process iterator: the base seed it drew and its fetcher
        state = worker_zero_random_state(iterator._base_seed, self.worker_init_fn)
        fetcher = iterator._dataset_fetcher
        fetch = fetcher.fetch

        def fetch_with_worker_generators(index):
            nonlocal state
            caller = capture_random_state()
            restore_random_state(state)
            try:
                return fetch(index)
            finally:
                state = capture_random_state()
                restore_random_state(caller)

        fetcher.fetch = fetch_with_worker_generators
        return iterator


def with_worker_seeded_loading(loader):
    """``loader`` as a :class:`WorkerSeededDataLoader` if mmengine built torch's
    ``DataLoader`` (mmengine constructs that class itself; the subclass adds no
    state, only how an iterator fetches)."""
    if type(loader) is DataLoader:
        loader.__class__ = WorkerSeededDataLoader
    return loader
