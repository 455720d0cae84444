"""AutoAmpOptimWrapper on a CPU, and per-epoch seeding."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import artseg_mm  # noqa: F401
from artseg_mm.engine import AutoAmpOptimWrapper, EpochSeedHook, cpu_supports_bf16
from artseg_mm.engine.hooks.epoch_seed_hook import seeded_worker_init_fn
from mmseg.registry import OPTIM_WRAPPERS


def build_wrapper(**kwargs):
    model = torch.nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='AutoAmpOptimWrapper',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs))
    return model, wrapper


def test_cpu_fp32_by_default():
    model, wrapper = build_wrapper()
    assert not wrapper.on_cuda
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.float32
    before = model.weight.detach().clone()
    wrapper.update_params(out.sum())
    assert not torch.equal(before, model.weight)


def test_cpu_bf16_autocast_or_a_clear_refusal():
    if not cpu_supports_bf16():
        with pytest.raises(RuntimeError, match='no native bf16 kernels'):
            build_wrapper(cpu_dtype='bfloat16')
        return
    model, wrapper = build_wrapper(cpu_dtype='bfloat16')
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.dtype == torch.float32


def test_bad_cpu_dtype_is_named():
    with pytest.raises(ValueError, match="cpu_dtype must be None or 'bfloat16'"):
        build_wrapper(cpu_dtype='float16')


def test_gpu_checkpoint_state_loads_on_cpu():
    model, wrapper = build_wrapper()
    state = wrapper.state_dict()
    state['loss_scaler'] = {'scale': 65536.0, '_growth_tracker': 0}
    wrapper.load_state_dict(state)
    assert wrapper.optimizer.param_groups[0]['lr'] == 0.1


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_epoch_seed_hook_repeats_each_epoch_and_differs_between_epochs():
    hook = EpochSeedHook()
    runner = SimpleNamespace(seed=7, epoch=3)
    hook.before_train_epoch(runner)
    first = draws()
    draws()  # e.g. a validation loop consuming the generators
    hook.before_train_epoch(runner)
    assert draws() == first
    runner.epoch = 4
    hook.before_train_epoch(runner)
    assert draws() != first


def test_seeded_worker_init_fn_follows_torch_worker_seed():
    torch.manual_seed(123)
    seeded_worker_init_fn(0)
    a = draws()
    torch.manual_seed(124)
    seeded_worker_init_fn(0)
    assert draws() != a


class SharedEncoder(torch.nn.Module):
    """One conv registered twice, as timm's CoaT shares its position encoders."""

    def __init__(self):
        super().__init__()
        self.pos = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.block = torch.nn.Sequential(self.pos, torch.nn.BatchNorm2d(2))
        self.norm = torch.nn.LayerNorm(2)


def test_shared_module_gets_one_param_group_per_parameter():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3,
                                                   weight_decay=0.01),
               paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
    with pytest.raises(ValueError, match='more than one parameter group'):
        build_optim_wrapper(SharedEncoder(), dict(cfg))  # no bypass_duplicate
    model = SharedEncoder()
    cfg['paramwise_cfg']['bypass_duplicate'] = True  # as the configs set it
    with DefaultScope.overwrite_default_scope('mmseg'):  # as in the Runner
        wrapper = build_optim_wrapper(model, dict(cfg))
    grouped = [p for g in wrapper.optimizer.param_groups for p in g['params']]
    assert len(grouped) == len({id(p) for p in grouped})
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters()}
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    assert decay[id(model.norm.weight)] == 0.0  # paramwise settings kept
    assert decay[id(model.pos.weight)] == 0.01
