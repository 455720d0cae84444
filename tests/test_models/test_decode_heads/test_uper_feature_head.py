"""UPerFeatureHead: shapes per backbone, parameter count, gradients, batch-1 BN, loss."""
import pytest
import torch

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.models.decode_heads import UPerFeatureHead
from mmseg.registry import MODELS

from conftest import (STRIDES, assert_gradients_reach_every_parameter,
                      assert_head_trains_on_timm_features, assert_loss_is_cross_entropy,
                      assert_trains_on_a_batch_of_one,
                      backbone_channels, conv_bn_params as conv_bn, decode_head_cfg,
                      multiscale_features as features)

# the study encoders' feature channels, from timm's FeatureInfo
BACKBONE_CHANNELS = backbone_channels()


def head_cfg(in_channels, **kwargs):
    return decode_head_cfg('UPerFeatureHead', in_channels, **dict(
        dict(channels=32, pool_scales=(1, 2, 3, 6)), **kwargs))


def expected_params(in_channels, channels, pool_scales, num_classes):
    """Parameter count from the layer formulas (conv + BN affine, bias-only
    for the norm-free scale-1 PPM branch)."""
    def conv_bias(c_in, c_out, k):
        return c_in * c_out * k * k + c_out

    top = in_channels[-1]
    n = sum(conv_bias(top, channels, 1) if s == 1 else conv_bn(top, channels, 1)
            for s in pool_scales)
    n += conv_bn(top + len(pool_scales) * channels, channels, 3)
    n += sum(conv_bn(c, channels, 1) for c in in_channels[:-1])
    n += (len(in_channels) - 1) * conv_bn(channels, channels, 3)
    n += conv_bn(len(in_channels) * channels, channels, 3)
    n += channels * num_classes + num_classes  # conv_seg
    return n


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('in_channels', BACKBONE_CHANNELS.values(),
                         ids=BACKBONE_CHANNELS.keys())
def test_output_shapes_and_levels(in_channels):
    head = MODELS.build(head_cfg(in_channels))
    assert isinstance(head, UPerFeatureHead)
    feats = features(in_channels)
    with torch.no_grad():
        levels = head.forward_levels(feats)
        fused = head._forward_feature(feats)
        logits = head(feats)
    assert [tuple(x.shape) for x in levels] == [
        (2, 32, 64 // s, 64 // s) for s in STRIDES]
    assert tuple(fused.shape) == (2, 32, 16, 16)
    assert tuple(logits.shape) == (2, 3, 16, 16)


@pytest.mark.parametrize('in_channels', BACKBONE_CHANNELS.values(),
                         ids=BACKBONE_CHANNELS.keys())
def test_parameter_count(in_channels):
    head = MODELS.build(head_cfg(in_channels, channels=256, num_classes=2))
    assert n_params(head) == expected_params(in_channels, 256, (1, 2, 3, 6), 2)
    # mmseg's UPerHead differs only in the scale-1 branch: BN affine (2 x 256)
    # there instead of a conv bias (256).
    cfg = head_cfg(in_channels, channels=256, num_classes=2, type='UPerHead')
    assert n_params(head) == n_params(MODELS.build(cfg)) - 256


def test_parameter_count_matches_smp_decoder():
    """smp's UPerNet decoder + head: same layers, plus a LayerNorm per input
    level and BN (not bias) in the scale-1 branch."""
    from segmentation_models_pytorch.base.heads import SegmentationHead
    from segmentation_models_pytorch.decoders.upernet.decoder import \
        UPerNetDecoder
    chs = BACKBONE_CHANNELS['convnext_tiny']
    ours = n_params(MODELS.build(head_cfg(chs, channels=256, num_classes=2)))
    smp = n_params(UPerNetDecoder([3, 0, *chs], 5, 256)) + n_params(
        SegmentationHead(256, 2, kernel_size=1))
    assert ours == smp - 2 * sum(chs) - 256


def test_gradients_reach_every_parameter():
    chs = BACKBONE_CHANNELS['coat_lite_small']
    head = MODELS.build(head_cfg(chs))
    head.train()
    assert_gradients_reach_every_parameter(head, features(chs))


def test_batch_one_training_with_plain_bn():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    head = MODELS.build(head_cfg(chs))
    assert_trains_on_a_batch_of_one(head, chs)
    # the scale-1 branch carries no norm layer; the others keep BN
    branch = head.psp_modules[0][1]
    assert branch.norm_cfg is None and branch.conv.bias is not None
    assert all(m[1].with_norm for m in list(head.psp_modules)[1:])
    # with BN in the scale-1 branch (mmseg's PPM) batch 1 cannot train
    for cfg in (head_cfg(chs, global_norm=True),
                head_cfg(chs, type='UPerHead')):
        other = MODELS.build(cfg)
        other.train()
        with pytest.raises(ValueError,
                           match='Expected more than 1 value per channel'):
            other(features(chs, batch=1))


def test_eval_mode_matches_mmseg_uperhead_with_same_weights():
    """With global_norm=True the head is mmseg's UPerHead layer for layer,
    with the same state-dict keys: the same weights give the same logits."""
    chs = BACKBONE_CHANNELS['coat_lite_small']
    ours = MODELS.build(head_cfg(chs, global_norm=True))
    ref = MODELS.build(head_cfg(chs, type='UPerHead'))
    ref_sd = ref.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref_sd.items()}
    gen = torch.Generator().manual_seed(2)
    mapped = {}
    for key, value in ref_sd.items():
        if not value.is_floating_point():
            mapped[key] = value
        elif key.endswith('running_var'):
            mapped[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            mapped[key] = torch.randn(value.shape, generator=gen)
    ref.load_state_dict(mapped)
    ours.load_state_dict(mapped)
    ours.eval()
    ref.eval()
    feats = features(chs)
    with torch.no_grad():
        torch.testing.assert_close(ours(feats), ref(feats))


def test_loss_by_feat_with_mmseg_cross_entropy():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    head = MODELS.build(head_cfg(chs))
    losses = assert_loss_is_cross_entropy(head, chs, ignored=(slice(None), slice(0, 8)))
    assert 0 <= losses['acc_seg'] <= 100


def test_integration_with_timm_features():
    import timm
    enc = timm.create_model('convnext_tiny', pretrained=False,
                            features_only=True)
    assert_head_trains_on_timm_features(
        enc, MODELS.build(head_cfg(enc.feature_info.channels(), channels=16)))


def test_bad_config_errors():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    with pytest.raises(ValueError, match="input_transform must be 'multiple_select'"):
        MODELS.build(head_cfg(chs, input_transform='resize_concat'))
    with pytest.raises(ValueError, match='at least 2 input levels'):
        MODELS.build(head_cfg([96], in_index=[0]))
    with pytest.raises(ValueError, match='pool_scales must not be empty'):
        MODELS.build(head_cfg(chs, pool_scales=()))
    head = MODELS.build(head_cfg(chs))
    with pytest.raises(ValueError, match='4 feature maps.*got 3'):
        head(features(chs)[:3])


def fusion_input_formats(head, feats):
    """Whether the fusion conv's input was channels-last, per forward."""
    seen = []
    hook = head.fpn_bottleneck.conv.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    try:
        return head(feats), seen
    finally:
        hook.remove()


def test_bf16_runs_channels_last_with_the_logits_of_nchw():
    in_channels = BACKBONE_CHANNELS['convnext_tiny']
    torch.manual_seed(0)
    head = MODELS.build(head_cfg(in_channels, channels_last=True)).eval()
    nchw = MODELS.build(head_cfg(in_channels)).eval()
    nchw.load_state_dict(head.state_dict())
    feats = features(in_channels, batch=1, size=64)
    with torch.no_grad():
        fp32, fp32_formats = fusion_input_formats(head, feats)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            bf16, bf16_formats = fusion_input_formats(head, feats)
            bf16_nchw, nchw_formats = fusion_input_formats(nchw, feats)
    assert fp32_formats == [True]  # the switch, not the precision, sets the layout
    assert bf16_formats == [True] and nchw_formats == [False]
    # the same convs in another memory layout: equal up to bf16 rounding
    torch.testing.assert_close(bf16.float(), bf16_nchw.float(), rtol=0.02, atol=0.02)
    scale = fp32.abs().max()
    assert (bf16.float() - fp32).abs().max() <= 0.02 * scale
    changed = (bf16.float().argmax(1) != fp32.argmax(1)).float().mean()
    assert changed <= 0.005
