"""ArtSegEncoderDecoder: channel check, non-finite loss guard, batched slide
inference (== whole-image and == mmseg's stock slide inference), inference
levers (conv+BN fusion, channels_last, bf16 autocast) and strict checkpoints."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModule
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData

import artseg_mm  # noqa: F401  (installs the mmcv.ops stand-in first)
from artseg_mm.engine.checkpoint_match import (CheckpointMismatchError,
                                               load_checkpoint_strict)
from artseg_mm.models.segmentors import (ArtSegEncoderDecoder,
                                         NonFiniteLossError, slide_windows)
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


@MODELS.register_module(name='_TestTinyBackbone', force=True)
class _TestTinyBackbone(BaseModule):
    """Two-level test backbone exposing ``out_channels`` like TimmFeatureBackbone.

    ``pointwise=True``: 1x1 convs at stride 1 (each output pixel depends on its
    input pixel only, so sliding windows reproduce whole-image logits);
    otherwise 3x3 convs at strides 2 and 4.
    """

    def __init__(self, out_channels=(8, 16), pointwise=False, init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = list(out_channels)
        self.model_name = 'tiny_test_net'
        k, s, p = (1, 1, 0) if pointwise else (3, 2, 1)
        c0, c1 = out_channels
        self.stage0 = nn.Sequential(nn.Conv2d(3, c0, k, s, p, bias=False),
                                    nn.BatchNorm2d(c0), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(c0, c1, k, s, p, bias=False),
                                    nn.BatchNorm2d(c1), nn.ReLU())

    def forward(self, x):
        x0 = self.stage0(x)
        return x0, self.stage1(x0)


def _randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * .1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * .1)


def _cfg(pointwise=False, head_in=(8, 16), test_cfg=None, aux=None, **kw):
    if pointwise:
        head = dict(type='FCNHead', in_channels=head_in[1], in_index=1,
                    channels=8, num_convs=1, kernel_size=1, concat_input=False,
                    num_classes=3, norm_cfg=dict(type='BN'))
    else:
        head = dict(type='UPerHead', in_channels=list(head_in),
                    in_index=[0, 1], channels=8, pool_scales=(1, 2),
                    num_classes=3, norm_cfg=dict(type='BN'))
    return dict(type='ArtSegEncoderDecoder',
                backbone=dict(type='_TestTinyBackbone', pointwise=pointwise),
                decode_head=head, auxiliary_head=aux,
                test_cfg=test_cfg or dict(mode='whole'), **kw)


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    _randomize_bn(model)
    return model.eval()


def _metas(x):
    return [dict(ori_shape=x.shape[2:], img_shape=x.shape[2:],
                 pad_shape=x.shape[2:], padding_size=[0, 0, 0, 0])
            for _ in range(x.shape[0])]


# ---------------------------------------------------------------- channels
def test_head_channel_mismatch_names_both_lists():
    with pytest.raises(ValueError) as err:
        MODELS.build(_cfg(head_in=(96, 192)))
    msg = str(err.value)
    assert "decode_head.in_channels [96, 192] != backbone 'tiny_test_net' " \
           'out_channels [8, 16]' in msg


def test_auxiliary_head_channel_mismatch_uses_in_index():
    aux = dict(type='FCNHead', in_channels=12, in_index=0, channels=4,
               num_convs=1, num_classes=3)
    with pytest.raises(ValueError) as err:
        MODELS.build(_cfg(aux=aux))
    msg = str(err.value)
    assert 'auxiliary_head.in_channels [12]' in msg
    assert 'out_channels [8, 16] (in_index [0]: [8])' in msg
    aux['in_channels'] = 8  # correct: stage 0 has 8 channels
    assert isinstance(MODELS.build(_cfg(aux=aux)), ArtSegEncoderDecoder)


def test_head_in_index_out_of_range():
    cfg = _cfg()
    cfg['decode_head']['in_index'] = [0, 2]
    with pytest.raises(ValueError, match=r'in_index \[0, 2\] out of range'):
        MODELS.build(cfg)


# -------------------------------------------------------------- NaN loss
def _samples(n, size, paths):
    samples = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_path=paths[i], img_shape=size,
                                        ori_shape=size, pad_shape=size))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, *size)))
        samples.append(s)
    return samples


def test_non_finite_loss_names_iteration_and_files():
    model = _build(_cfg()).train()
    x = torch.randn(2, 3, 32, 32)
    paths = ['data/img_dir/train/a.png', 'data/img_dir/train/b.png']
    losses = model(x, _samples(2, (32, 32), paths), mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())

    MessageHub.get_instance('test_non_finite_loss').update_info('iter', 41)
    x[1, 0, 3, 3] = float('nan')
    with pytest.raises(NonFiniteLossError) as err:
        model(x, _samples(2, (32, 32), paths), mode='loss')
    msg = str(err.value)
    assert 'Non-finite loss at iteration 42' in msg
    assert 'decode.loss_ce' in msg
    assert "'data/img_dir/train/a.png', 'data/img_dir/train/b.png'" in msg

    model.train_cfg = dict(check_finite_loss=False)
    losses = model(x, _samples(2, (32, 32), paths), mode='loss')
    assert torch.isnan(losses['decode.loss_ce'])


# ------------------------------------------------------------------ slide
def test_slide_windows_cover_image_in_mmseg_order():
    boxes = slide_windows(10, 7, (4, 4), (3, 3))
    # 3 rows x 2 cols, last row/col shifted back to end at the border.
    assert boxes == [(0, 4, 0, 4), (0, 4, 3, 7), (3, 7, 0, 4), (3, 7, 3, 7),
                     (6, 10, 0, 4), (6, 10, 3, 7)]
    assert slide_windows(3, 5, (8, 8), (6, 6)) == [(0, 3, 0, 5)]


@pytest.mark.parametrize('batch_size', [1, 3])
def test_slide_equals_whole_for_pointwise_model(batch_size):
    slide_cfg = dict(mode='slide', crop_size=(16, 16), stride=(11, 11),
                     batch_size=batch_size)
    model = _build(_cfg(pointwise=True, test_cfg=slide_cfg))
    x = torch.randn(2, 3, 37, 29)  # windows at borders overlap unevenly
    with torch.no_grad():
        slide = model.inference(x, _metas(x))
        model.test_cfg = dict(mode='whole')
        whole = model.inference(x, _metas(x))
    assert slide.shape == whole.shape == (2, 3, 37, 29)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('batch_size', [1, 2, 4])
def test_slide_equals_mmseg_stock_slide(batch_size):
    slide_cfg = dict(mode='slide', crop_size=(24, 24), stride=(16, 16),
                     batch_size=batch_size)
    ours = _build(_cfg(test_cfg=slide_cfg))
    stock_cfg = copy.deepcopy(_cfg(test_cfg=slide_cfg))
    stock_cfg['type'] = 'EncoderDecoder'
    stock = MODELS.build(stock_cfg).eval()
    assert type(stock) is EncoderDecoder
    stock.load_state_dict(ours.state_dict())
    stock.test_cfg = type('Cfg', (dict, ), {'__getattr__': dict.__getitem__})(
        slide_cfg)  # mmseg reads test_cfg.stride as an attribute
    x = torch.randn(1, 3, 50, 41)
    with torch.no_grad():
        expected = stock.slide_inference(x, _metas(x))
        got = ours.inference(x, _metas(x))
    if batch_size == 1:
        assert torch.equal(got, expected)
    else:  # batched convs may round differently
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_slide_image_smaller_than_crop_and_predict():
    slide_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48),
                     batch_size=2)
    model = _build(_cfg(test_cfg=slide_cfg))
    x = torch.randn(1, 3, 20, 30)
    with torch.no_grad():
        out = model.predict(x)
    assert out[0].seg_logits.data.shape == (3, 20, 30)
    assert out[0].pred_sem_seg.data.shape == (1, 20, 30)


# --------------------------------------------------------------- levers
def test_fuse_conv_bn_matches_and_leaves_training_model_intact():
    model = _build(_cfg(test_cfg=dict(mode='whole')))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.inference(x, _metas(x))
        model.test_cfg = dict(mode='whole', fuse_conv_bn=True)
        fused = model.inference(x, _metas(x))
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)
    fused_model = model._inference_model()
    assert fused_model is not model
    n_bn = lambda m: sum(isinstance(k, nn.BatchNorm2d) for k in m.modules())  # noqa
    # backbone (2) + UPerHead ConvModules all folded; the training model keeps BN
    assert n_bn(fused_model) == 0 and n_bn(model) > 0
    assert not any('_fused_copy' in k for k in model.state_dict())
    model.train()
    assert '_fused_copy' not in model.__dict__


def test_channels_last_and_bf16_autocast_match_fp32():
    x = torch.randn(1, 3, 32, 32)
    ref = _build(_cfg())
    fast = _build(_cfg(channels_last=True,
                       test_cfg=dict(mode='whole', autocast_dtype='bfloat16')))
    assert fast.backbone.stage0[0].weight.is_contiguous(
        memory_format=torch.channels_last)
    # the head stays NCHW (its 3x3 convs are faster so, NNPACK needs it)
    head_conv = fast.decode_head.fpn_bottleneck.conv.weight
    assert head_conv.shape[-1] == 3 and head_conv.is_contiguous()
    with torch.no_grad():
        want = ref.inference(x, _metas(x))
        got = fast.inference(x, _metas(x))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)
    fast.test_cfg = dict(mode='whole', autocast_dtype='int8')
    with pytest.raises(ValueError, match="autocast_dtype must be one of"):
        fast.inference(x, _metas(x))


def test_bf16_inference_copy_gives_autocasts_logits_from_bf16_weights():
    model = _build(_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True,
                                      autocast_dtype='bfloat16')))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        got = model.inference(x, _metas(x))
        fused = model.__dict__['_fused_copy']  # fp32 weights, cast by autocast
        with torch.autocast('cpu', dtype=torch.bfloat16):
            want = fused.whole_inference(x, _metas(x)).float()
    assert torch.equal(got, want)
    low = model._inference_model('cpu')
    convs = [m for m in low.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # training weights
    assert not any('_bf16_copy' in k for k in model.state_dict())
    # fp32 inference and training get no bf16 weights; train() drops the copy
    model.test_cfg['autocast_dtype'] = None
    assert model._inference_model('cpu') is model.__dict__['_fused_copy']
    with torch.autocast('cpu', dtype=torch.bfloat16):  # a caller's bf16 region
        assert model._inference_model('cpu') is low
    model.train()
    assert '_bf16_copy' not in model.__dict__ and model._inference_model('cpu') is model


# ------------------------------------------------------------ checkpoints
def test_checkpoint_that_does_not_match_the_model(tmp_path):
    model = _build(_cfg())
    state = model.state_dict()
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=state, meta=dict()), good)
    fresh = MODELS.build(_cfg())
    load_checkpoint_strict(fresh, str(good))
    assert torch.equal(fresh.decode_head.conv_seg.weight,
                       model.decode_head.conv_seg.weight)

    bad_state = dict(state)
    del bad_state['backbone.stage0.0.weight']
    bad_state['backbone.extra.weight'] = torch.zeros(1)
    bad_state['decode_head.conv_seg.weight'] = torch.zeros(5, 8, 1, 1)
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict=bad_state), bad)

    # mmengine's default path (runner.load_checkpoint: strict=False) only warns.
    load_checkpoint(MODELS.build(_cfg()), str(bad), map_location='cpu')

    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint_strict(MODELS.build(_cfg()), str(bad))
    msg = str(err.value)
    assert str(bad) in msg
    assert 'missing in checkpoint (1): backbone.stage0.0.weight' in msg
    assert 'unexpected in checkpoint (1): backbone.extra.weight' in msg
    assert ('shape mismatch (1): decode_head.conv_seg.weight: checkpoint '
            '(5, 8, 1, 1) vs model (3, 8, 1, 1)') in msg


def test_head_in_channels_none_are_derived_from_backbone():
    aux = dict(type='FCNHead', in_channels=None, in_index=0, channels=4,
               num_convs=1, num_classes=3)
    cfg = _cfg(aux=aux)
    cfg['decode_head']['in_channels'] = None
    model = MODELS.build(cfg)
    assert model.decode_head.in_channels == [8, 16]
    assert model.auxiliary_head.in_channels == 8
    assert cfg['decode_head']['in_channels'] is None  # caller's dict untouched


def test_fuse_conv_bn_handles_reverted_syncbn():
    from mmengine.model import revert_sync_batchnorm
    cfg = _cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True))
    cfg['decode_head']['norm_cfg'] = dict(type='SyncBN')
    model = revert_sync_batchnorm(_build(cfg)).eval()  # SyncBN -> _BatchNormXd
    _randomize_bn(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        fused = model.inference(x, _metas(x))
        model.test_cfg = dict(mode='whole')
        plain = model.inference(x, _metas(x))
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)
    model.test_cfg = dict(mode='whole', fuse_conv_bn=True)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in model._inference_model().modules())
