"""Parameter groups of the study configs' optimizers (mmengine's default
constructor with ``bypass_duplicate``): one group per parameter, CoaT's shared
position encoders included, each with the lr and weight decay its name asks."""
import copy

import pytest

from conftest import STUDY_CONFIGS, build_study_model, study_config

# one group per parameter; CoaT-Lite-S registers 128 of its 281 twice
GROUPS = {'convnext_tiny_upernet': 215, 'swin_tiny_upernet': 206,
          'coat_lite_small_upernet': 281, 'resnet50_unet': 179}


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


def expected_options(name, optimizer, custom_keys):
    """lr and weight decay for a parameter: its longest matching custom key
    (ties alphabetically, as mmengine sorts them), else the optimizer's."""
    mult = {}
    for key in sorted(sorted(custom_keys), key=len, reverse=True):
        if key in name:
            mult = custom_keys[key]
            break
    return dict(lr=optimizer['lr'] * mult.get('lr_mult', 1.),
                weight_decay=optimizer['weight_decay'] * mult.get('decay_mult', 1.))


@pytest.mark.parametrize('name', STUDY_CONFIGS)
def test_one_group_per_parameter_with_its_paramwise_options(name):
    cfg = study_config(name)
    assert 'constructor' not in cfg.optim_wrapper  # mmengine's default
    assert cfg.optim_wrapper.paramwise_cfg.bypass_duplicate
    model = build_study_model(cfg)
    groups = param_groups(model, cfg.optim_wrapper.to_dict())
    assert len(groups) == GROUPS[name]
    assert [names for names, _ in groups] == [[n] for n, _ in model.named_parameters()]
    custom_keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    for (param_name,), options in groups:
        got = dict(lr=options['lr'], weight_decay=options['weight_decay'])
        assert got == expected_options(param_name, cfg.optim_wrapper.optimizer,
                                           custom_keys), param_name
