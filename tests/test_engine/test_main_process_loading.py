"""Main-process loading draws the augmentations of one worker process."""
import copy
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import artseg_mm  # noqa: F401
from artseg_mm.engine import ArtSegRunner
from artseg_mm.engine.hooks.epoch_seed_hook import seed_everything
from artseg_mm.engine.main_process_loading import WorkerSeededDataLoader

CONFIG = 'configs/demo/convnext_tiny_upernet_demo.py'


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def one_epoch(build, loader_cfg, num_workers):
    """Seed as EpochSeedHook does, load one epoch, then draw from the globals."""
    cfg = copy.deepcopy(loader_cfg)
    cfg['num_workers'] = num_workers
    loader = build(cfg, seed=0)
    seed_everything(11)
    batches = [torch.stack(b['inputs']) for b in loader]
    return loader, batches, draws()


@pytest.fixture(scope='module')
def train_loader_cfg(tiny_demo_root):
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG).train_dataloader.to_dict()
    cfg['dataset']['data_root'] = str(tiny_demo_root)
    cfg['batch_size'] = 2
    return cfg


def test_no_workers_loads_what_one_worker_loads(train_loader_cfg):
    loader, in_main, after_main = one_epoch(ArtSegRunner.build_dataloader,
                                            train_loader_cfg, 0)
    assert isinstance(loader, WorkerSeededDataLoader)
    _, in_worker, after_worker = one_epoch(ArtSegRunner.build_dataloader,
                                           train_loader_cfg, 1)
    assert len(in_main) == len(in_worker) == 2
    for a, b in zip(in_main, in_worker):
        assert torch.equal(a, b)
    # the model's generators moved as with a worker: by the iterator's seed only
    assert after_main == after_worker


def test_torch_loader_without_workers_draws_otherwise(train_loader_cfg):
    """What the wrapper is for: mmengine's plain loader with no workers augments
    from the global generators, so the batches and the model's draws differ."""
    _, plain, after_plain = one_epoch(Runner.build_dataloader, train_loader_cfg, 0)
    _, in_worker, after_worker = one_epoch(ArtSegRunner.build_dataloader,
                                           train_loader_cfg, 1)
    assert not all(torch.equal(a, b) for a, b in zip(plain, in_worker))
    assert after_plain != after_worker


def test_loading_leaves_the_callers_generators_alone(train_loader_cfg):
    cfg = dict(copy.deepcopy(train_loader_cfg), num_workers=0)
    loader = ArtSegRunner.build_dataloader(cfg, seed=0)
    seed_everything(3)
    iterator = iter(loader)  # draws the iterator's base seed, as torch does
    expected = draws()
    seed_everything(3)
    iterator = iter(loader)
    next(iterator)
    assert draws() == expected
