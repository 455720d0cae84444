"""ArtSegEncoderDecoder: channel check, non-finite loss guard, batched slide
inference (== whole-image and == mmseg's stock slide inference, small images
padded) and strict checkpoints. The inference speed-ups: tests/test_acceleration.py."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.checkpoints.matching import (CheckpointMismatchError,
                                               load_checkpoint_strict)
from artseg_mm.models.segmentors import (ArtSegEncoderDecoder,
                                         NonFiniteLossError, slide_windows)
from tiny_segmentor import build as _build
from tiny_segmentor import metas as _metas
from tiny_segmentor import tiny_cfg as _cfg
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


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
        # the window is padded (zeros, bottom/right) to the crop, the logits cut back
        padded = torch.nn.functional.pad(x, (0, 34, 0, 44))
        expected = model.encode_decode(padded, _metas(padded))[:, :, :20, :30]
    assert out[0].seg_logits.data.shape == (3, 20, 30)
    assert out[0].pred_sem_seg.data.shape == (1, 20, 30)
    torch.testing.assert_close(out[0].seg_logits.data, expected[0])


def test_slide_image_under_the_network_stride_is_segmented():
    """A 12 x 9 image (under the 32 px stride of the study's encoders) through a
    study model's slide inference: padded to the window, not a kernel-size error."""
    from conftest import build_study_model
    model = build_study_model('convnext_tiny_upernet').eval()
    model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48), batch_size=1)
    x = torch.randn(1, 3, 12, 9)
    with torch.no_grad():
        out = model.predict(x)
    assert out[0].pred_sem_seg.data.shape == (1, 12, 9)


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
