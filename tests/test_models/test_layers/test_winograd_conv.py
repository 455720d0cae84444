"""WinogradConv2d: NNPACK forward and input gradient equal nn.Conv2d's, and
every case NNPACK does not serve is exactly nn.Conv2d."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope
from torch.utils.flop_counter import FlopCounterMode

import artseg_mm  # noqa: F401
from artseg_mm.models.layers import WinogradConv2d, nnpack_usable
from artseg_mm.acceleration import fuse_conv_bn_


def pair(*args, min_pixels=16, seed=0, **kwargs):
    """A WinogradConv2d and an nn.Conv2d with the same weights."""
    torch.manual_seed(seed)
    conv = WinogradConv2d(*args, min_pixels=min_pixels, **kwargs)
    ref = nn.Conv2d(*args, **kwargs)
    ref.load_state_dict(conv.state_dict())
    return conv, ref


def test_this_torch_has_nnpack():
    # the pinned CPU wheel bundles NNPACK; without it the layer is nn.Conv2d
    assert nnpack_usable(), 'torch.backends.nnpack.is_available() is False'


@pytest.mark.parametrize('padding,bias', [(1, True), (1, False), (0, True), (2, False)])
def test_nnpack_forward_and_gradients_match_conv2d(padding, bias):
    conv, ref = pair(6, 5, 3, padding=padding, bias=bias)
    x = torch.randn(3, 6, 10, 9, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    assert conv.uses_nnpack(x)
    out, want = conv(x), ref(x_ref)
    assert out.shape == want.shape
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    want.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-5)
    if bias:
        torch.testing.assert_close(conv.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-5)


def test_channels_last_input_and_weights_are_accepted():
    conv, ref = pair(4, 4, 3, padding=1)
    conv.to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    assert conv.uses_nnpack(x)
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('case', ['small map', 'stride 2', '1x1 kernel', 'groups',
                                  'dilation', 'float64', 'bf16 autocast',
                                  'nnpack switched off'])
def test_other_cases_are_exactly_conv2d(case):
    kwargs = dict(padding=1)
    shape, dtype = (2, 4, 8, 8), torch.float32
    if case == 'stride 2':
        kwargs['stride'] = 2
    elif case == '1x1 kernel':
        kwargs['padding'] = 0
    elif case == 'groups':
        kwargs['groups'] = 2
    elif case == 'dilation':
        kwargs.update(dilation=2, padding=2)
    kernel = 1 if case == '1x1 kernel' else 3
    conv, ref = pair(4, 4, kernel, min_pixels=100 if case == 'small map' else 16,
                     **kwargs)
    if case == 'float64':
        dtype = torch.float64
        conv, ref = conv.double(), ref.double()
    x = torch.randn(*shape, dtype=dtype)
    if case == 'bf16 autocast':
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert not conv.uses_nnpack(x)
            assert torch.equal(conv(x), ref(x))
        return
    if case == 'nnpack switched off':
        with torch.backends.nnpack.flags(enabled=False):
            assert not conv.uses_nnpack(x)
            assert torch.equal(conv(x), ref(x))
        assert conv.uses_nnpack(x)
        return
    assert not conv.uses_nnpack(x)
    assert torch.equal(conv(x), ref(x))


def test_same_state_dict_and_flops_as_conv2d():
    conv, ref = pair(8, 6, 3, padding=1)
    assert conv.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(1, 8, 12, 12)
    counts = []
    for module in (conv, ref):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] == 2 * 12 * 12 * 9 * 8 * 6
    with pytest.raises(ValueError, match='min_pixels must be >= 1'):
        WinogradConv2d(2, 2, 3, min_pixels=0)


def test_conv_module_builds_it_and_conv_bn_fusion_keeps_it():
    with DefaultScope.overwrite_default_scope('mmseg'):
        block = ConvModule(4, 6, 3, padding=1, norm_cfg=dict(type='BN'),
                           conv_cfg=dict(type='WinogradConv2d', min_pixels=16))
    assert isinstance(block.conv, WinogradConv2d) and block.conv.bias is None
    block.bn.running_mean.uniform_(-0.5, 0.5)
    block.bn.running_var.uniform_(0.5, 1.5)
    block.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        want = block(x)
        assert fuse_conv_bn_(block) == 1
        assert isinstance(block.conv, WinogradConv2d) and block.conv.uses_nnpack(x)
        assert isinstance(block.bn, nn.Identity)
        torch.testing.assert_close(block(x), want, rtol=1e-4, atol=1e-5)
