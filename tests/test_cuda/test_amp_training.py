"""fp16 AMP training steps of the study's four models, with the optimizer
wrapper their config gets from ``tools/train.py --amp``."""
import pytest
import torch

from artseg_mm.engine.optim_wrapper import enable_amp
from conftest import STUDY_CONFIGS, build_study_model, study_batch, study_config

pytestmark = pytest.mark.cuda

MAX_STEPS = 8  # dynamic loss scaling may skip a few overflowing first steps


def amp_wrapper(model, cfg):
    """The optimizer wrapper ``tools/train.py --amp`` builds for ``cfg``."""
    from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
    from mmengine.registry import DefaultScope
    enable_amp(cfg)
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper, AmpOptimWrapper), type(wrapper)
    return wrapper


@pytest.mark.parametrize('name', STUDY_CONFIGS)
def test_fp16_amp_training_step(name):
    from mmengine.model import revert_sync_batchnorm
    cfg = study_config(name)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_study_model(cfg)).cuda().train()
    wrapper = amp_wrapper(model, cfg)
    scaler = wrapper.loss_scaler
    inputs, samples = study_batch(64, n=2)
    inputs, samples = inputs.cuda(), [s.to('cuda') for s in samples]
    params = dict(model.named_parameters())
    before = {k: p.detach().clone() for k, p in params.items()}

    for attempt in range(1, MAX_STEPS + 1):
        scale, tracker = scaler.get_scale(), scaler.state_dict()['_growth_tracker']
        with wrapper.optim_context(model):
            assert torch.get_autocast_dtype('cuda') == torch.float16
            assert torch.is_autocast_enabled('cuda')
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss), losses
        wrapper.backward(loss)
        scaler.unscale_(wrapper.optimizer)  # the true gradients
        missing = [k for k, p in params.items() if p.requires_grad and p.grad is None]
        assert not missing, f'no gradient: {missing[:5]}'
        finite = all(bool(torch.isfinite(p.grad).all()) for p in params.values()
                     if p.grad is not None)
        grad_max = {k: p.grad.abs().max().item() for k, p in params.items()
                    if p.grad is not None}
        wrapper.step()
        wrapper.zero_grad()
        if finite:
            break
        # an overflow: the step is skipped and the loss scale halved
        assert scaler.get_scale() == pytest.approx(scale * scaler.get_backoff_factor())
        assert all(torch.equal(p, before[k]) for k, p in params.items())
    else:
        pytest.fail(f'{MAX_STEPS} fp16 steps in a row overflowed (scale {scale})')

    # a finite step: taken, counted towards the next scale growth
    assert scaler.get_scale() == scale
    assert scaler.state_dict()['_growth_tracker'] == tracker + 1
    assert all(torch.isfinite(p).all() for p in params.values())
    unchanged = [k for k, p in params.items()
                 if grad_max.get(k, 0) > 1e-6 and torch.equal(p, before[k])]
    assert not unchanged, f'weights with gradients left unchanged: {unchanged[:5]}'
