"""Inference on CUDA: half precisions against fp32, WinogradConv2d, channels-last
and sliding windows give the logits they should."""
import copy

import pytest
import torch

from conftest import STUDY_CONFIGS, study_batch, study_config
from cuda_helpers import cuda_model, exact_fp32, metas, relative_error

pytestmark = pytest.mark.cuda

# largest |error| as a share of max |fp32 logits|, and the share of pixels whose
# class may differ, for untrained models at 64 px (on CPU, the same autocast
# gave at most 2.4e-3 for float16 and 1.5e-2 for bfloat16, >= 98.7% agreement)
HALF_TOLERANCE = {'float16': (1e-2, 0.99), 'bfloat16': (5e-2, 0.95)}
FP32_TOLERANCE = 1e-4  # fp32 against fp32 by other kernels or devices
CHANNELS_LAST_CONFIGS = ['convnext_tiny_upernet', 'coat_lite_small_upernet',
                         'resnet50_unet']


@pytest.mark.parametrize('name', STUDY_CONFIGS)
def test_half_precision_logits_match_fp32(name):
    model = cuda_model(name)
    inputs = study_batch(64, n=2)[0].cuda()
    with torch.no_grad():
        with exact_fp32():
            reference = model.inference(inputs, metas(inputs))
        for dtype, (tolerance, agreement) in HALF_TOLERANCE.items():
            model.test_cfg.autocast_dtype = dtype  # the config's inference lever
            logits = model.inference(inputs, metas(inputs))
            assert logits.dtype == torch.float32
            assert relative_error(logits, reference) <= tolerance, dtype
            same = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
            assert same >= agreement, (dtype, same)


def test_winograd_conv_on_cuda_is_conv2d():
    from artseg_mm.models.layers import WinogradConv2d
    torch.manual_seed(0)
    conv = WinogradConv2d(32, 16, 3, padding=1).cuda()
    reference = torch.nn.Conv2d(32, 16, 3, padding=1).cuda()
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(2, 32, 96, 96, device='cuda')  # large enough for NNPACK on CPU
    assert not conv.uses_nnpack(x)
    with exact_fp32():
        xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
        outs = [conv(xs[0]), reference(xs[1])]
        assert torch.equal(outs[0], outs[1])
        grad = torch.randn_like(outs[0])
        outs[0].backward(grad)
        outs[1].backward(grad)
    assert torch.equal(xs[0].grad, xs[1].grad)
    assert torch.equal(conv.weight.grad, reference.weight.grad)
    assert torch.equal(conv.bias.grad, reference.bias.grad)
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
        half = conv(x)
        assert half.dtype == torch.float16
        assert torch.equal(half, reference(x))


@pytest.mark.parametrize('name', CHANNELS_LAST_CONFIGS)
def test_channels_last_gives_the_nchw_logits(name):
    cfg = study_config(name)
    assert cfg.model.channels_last, f'{name}: channels_last is off in the config'
    model = cuda_model(cfg)
    weight = next(p for p in model.backbone.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    cfg.model.channels_last = False
    nchw = cuda_model(cfg)
    nchw.load_state_dict(model.state_dict())
    weight = next(p for p in nchw.backbone.parameters() if p.dim() == 4)
    assert weight.is_contiguous() and not weight.is_contiguous(
        memory_format=torch.channels_last)
    inputs = study_batch(64, n=2)[0].cuda()
    with torch.no_grad(), exact_fp32():
        expected = nchw.inference(inputs, metas(inputs))
        logits = model.inference(inputs, metas(inputs))
    assert relative_error(logits, expected) <= FP32_TOLERANCE


def test_sliding_window_inference_on_cuda_matches_cpu():
    from artseg_mm.models.segmentors import slide_windows
    cfg = study_config('convnext_tiny_upernet')
    cfg.model.test_cfg.update(crop_size=(64, 64), stride=(48, 48), batch_size=2)
    model = cuda_model(cfg, mode='slide')
    on_cpu = copy.deepcopy(model).cpu()
    inputs = torch.randn(1, 3, 160, 144, generator=torch.Generator().manual_seed(0))
    # 3 x 3 windows in batches of 2: the last batch is partial
    assert len(slide_windows(160, 144, (64, 64), (48, 48))) == 9
    with torch.no_grad():
        expected = on_cpu.inference(inputs, metas(inputs))
        with exact_fp32():
            logits = model.inference(inputs.cuda(), metas(inputs))
    assert logits.is_cuda and logits.shape == expected.shape == (1, 2, 160, 144)
    assert relative_error(logits, expected) <= FP32_TOLERANCE
