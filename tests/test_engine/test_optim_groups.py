"""Parameter groups of the study configs' optimizers: mmengine's default
constructor with ``bypass_duplicate`` against our shared-parameter constructor."""
import copy

import pytest

from conftest import STUDY_CONFIGS, build_study_model, study_config


def param_groups(model, optim_wrapper_cfg):
    """``(parameter names, options)`` per optimizer group, in order."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    cfg = dict(copy.deepcopy(optim_wrapper_cfg), type='OptimWrapper')
    cfg.pop('cpu_dtype', None)
    with DefaultScope.overwrite_default_scope('mmseg'):  # as in the Runner
        wrapper = build_optim_wrapper(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    return [([names[id(p)] for p in g['params']],
             {k: v for k, v in g.items() if k != 'params'})
            for g in wrapper.optimizer.param_groups]


@pytest.mark.parametrize('name', STUDY_CONFIGS)
def test_mmengine_bypass_duplicate_matches_shared_param_constructor(name):
    cfg = study_config(name)
    model = build_study_model(cfg)
    ours = dict(cfg.optim_wrapper.to_dict(),
                constructor='SharedParamOptimWrapperConstructor')
    paramwise = dict(cfg.optim_wrapper.paramwise_cfg, bypass_duplicate=True)
    mmengine = dict(cfg.optim_wrapper.to_dict(),
                    constructor='DefaultOptimWrapperConstructor',
                    paramwise_cfg=paramwise)
    expected = param_groups(model, ours)
    assert param_groups(model, mmengine) == expected
    assert len(expected) == len(list(model.parameters()))
