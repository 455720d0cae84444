"""UNetHead: shapes per backbone, 1/4 and full resolution, parameter count, gradients."""
import pytest
import torch

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.models.decode_heads import UNetHead
from mmseg.registry import MODELS

from conftest import (assert_gradients_reach_every_parameter,
                      assert_head_trains_on_timm_features, assert_loss_is_cross_entropy,
                      assert_trains_on_a_batch_of_one,
                      backbone_channels, conv_bn_params as conv_bn, decode_head_cfg,
                      multiscale_features as features)

# the study encoders' feature channels, from timm's FeatureInfo
BACKBONE_CHANNELS = backbone_channels()


def head_cfg(in_channels, **kwargs):
    return decode_head_cfg('UNetHead', in_channels, **dict(
        dict(decoder_channels=(32, 16, 8)), **kwargs))


def expected_params(in_channels, decoder_channels, num_classes):
    """Two 3x3 conv + BN per stage; stage i concatenates the skip from the
    (i+1)-th coarsest level, later stages have none."""
    skips = list(reversed(in_channels[:-1]))
    c_prev = in_channels[-1]
    n = 0
    for i, c_out in enumerate(decoder_channels):
        c_skip = skips[i] if i < len(skips) else 0
        n += conv_bn(c_prev + c_skip, c_out, 3) + conv_bn(c_out, c_out, 3)
        c_prev = c_out
    return n + c_prev * num_classes + num_classes


@pytest.mark.parametrize('in_channels', BACKBONE_CHANNELS.values(),
                         ids=BACKBONE_CHANNELS.keys())
@pytest.mark.parametrize('decoder_channels,out_size', [
    ((32, 16, 8), 16),            # 1/4 of the input (default layout)
    ((32, 16, 8, 8, 4), 64),      # two extra x2 stages: full resolution
])
def test_output_shapes_and_param_count(in_channels, decoder_channels,
                                       out_size):
    head = MODELS.build(head_cfg(in_channels,
                                 decoder_channels=decoder_channels))
    assert isinstance(head, UNetHead)
    assert head.channels == decoder_channels[-1]
    feats = features(in_channels)
    with torch.no_grad():
        levels = head.forward_levels(feats)
        logits = head(feats)
    sizes = [4, 8, 16, 32, 64]  # each stage doubles from the 2x2 input
    assert [tuple(x.shape) for x in levels] == [
        (2, c, s, s) for c, s in zip(decoder_channels, sizes)]
    assert tuple(logits.shape) == (2, 3, out_size, out_size)
    assert sum(p.numel() for p in head.parameters()) == expected_params(
        in_channels, decoder_channels, 3)


def test_default_widths_param_count():
    chs = BACKBONE_CHANNELS['resnet50']
    cfg = head_cfg(chs, num_classes=2)
    del cfg['decoder_channels']
    head = MODELS.build(cfg)
    assert head.decoder_channels == (256, 128, 64) and head.channels == 64
    assert sum(p.numel() for p in head.parameters()) == expected_params(
        chs, (256, 128, 64), 2)


def test_skip_sizes_follow_features_not_powers_of_two():
    """Odd feature sizes (e.g. a 200 px input: 50, 25, 13, 7) are matched by
    upsampling to each skip's own size."""
    chs = BACKBONE_CHANNELS['coat_lite_small']
    feats = [torch.randn(1, c, s, s) for c, s in zip(chs, (50, 25, 13, 7))]
    head = MODELS.build(head_cfg(chs))
    head.eval()
    with torch.no_grad():
        assert tuple(head(feats).shape) == (1, 3, 50, 50)


def test_gradients_reach_every_parameter():
    chs = BACKBONE_CHANNELS['resnet50']
    head = MODELS.build(head_cfg(chs, decoder_channels=(16, 8, 8, 4)))
    head.train()
    assert_gradients_reach_every_parameter(head, features(chs))


def test_batch_one_training_with_plain_bn():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    assert_trains_on_a_batch_of_one(MODELS.build(head_cfg(chs)), chs)


def test_bilinear_mode_and_loss_by_feat():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    head = MODELS.build(head_cfg(chs, interpolation_mode='bilinear'))
    assert_loss_is_cross_entropy(head, chs, ignored=(slice(None), slice(None), slice(0, 5)))


def test_integration_with_timm_resnet50_features():
    import timm
    enc = timm.create_model('resnet50', pretrained=False, features_only=True,
                            out_indices=(1, 2, 3, 4))
    assert enc.feature_info.channels() == BACKBONE_CHANNELS['resnet50']
    assert_head_trains_on_timm_features(enc, MODELS.build(head_cfg(enc.feature_info.channels())))


def test_bad_config_errors():
    chs = BACKBONE_CHANNELS['convnext_tiny']
    with pytest.raises(ValueError, match=r'channels \(32\) must equal the last'
                       r' decoder_channels entry \(8\)'):
        MODELS.build(head_cfg(chs, channels=32))
    with pytest.raises(ValueError, match='one entry per skip level'):
        MODELS.build(head_cfg(chs, decoder_channels=(32, 16)))
    with pytest.raises(ValueError, match='decoder_channels must not be empty'):
        MODELS.build(head_cfg(chs, decoder_channels=()))
    with pytest.raises(ValueError, match="input_transform must be 'multiple_select'"):
        MODELS.build(head_cfg(chs, input_transform='resize_concat'))
    with pytest.raises(ValueError, match='at least 2 input levels'):
        MODELS.build(head_cfg([96], in_index=[0], decoder_channels=(8,)))
    head = MODELS.build(head_cfg(chs))
    with pytest.raises(ValueError, match=r'expected 4 feature maps .*got 2'):
        head(features(chs)[:2])
