"""test_cfg.window_blend: 'uniform' is mmseg's averaging to the bit, 'gaussian'
weights each window by a Gaussian centred on it; the weights of the windows
covering a pixel sum to 1, the grid's row x column sums equal an explicit
full-size weight map, and the segmentor and the scan path give one mask."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.models.segmentors import slide_windows, sliding_window_logits
from artseg_mm.models.segmentors.sliding_window import (GAUSSIAN_FLOOR, window_blend,
                                                        window_weights)
from tiny_segmentor import build as _build
from tiny_segmentor import metas as _metas
from tiny_segmentor import tiny_cfg as _cfg
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

# (image, crop, stride): several windows with uneven last ones, and a window
# taller than the image (padded, its weights cut to the image)
GEOMETRIES = [((50, 41), (16, 16), (11, 11)),
              ((37, 29), (16, 12), (11, 5)),
              ((10, 45), (16, 16), (12, 12))]


def _image(shape, seed=0):
    return torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))


def _fake_forward(crops):
    """Window-dependent logits (a term that depends on the place in the window), so
    overlapping windows disagree and the blend matters; elementwise per window,
    so a batch of windows computes what single windows do, to the bit."""
    h, w = crops.shape[2:]
    ramp = torch.linspace(-1, 2, h)[:, None] * torch.linspace(0.5, -1.5, w)[None, :]
    return torch.cat([crops[:, :2] * 1.7 + ramp, crops[:, 2:] - ramp], dim=1)


def _accumulated(x, crop, stride, batch_size, blend=None, forward=_fake_forward):
    """The accumulator's full logits (the bands stacked)."""
    def crops_of(boxes):
        return torch.cat([x[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
    kwargs = {} if blend is None else dict(blend=blend)
    bands = list(sliding_window_logits(crops_of, forward, x.shape[2:], crop, stride,
                                       batch_size, **kwargs))
    assert [b[0] for b in bands] == [0] + [b[1] for b in bands[:-1]]
    assert bands[-1][1] == x.shape[2]
    return torch.cat([b[2] for b in bands], dim=2)


def _padded_window_logits(x, box, crop, forward):
    """One window's logits as mmseg pads a window larger than the image, cut back."""
    y1, y2, x1, x2 = box
    window = x[:, :, y1:y2, x1:x2]
    pad_h, pad_w = crop[0] - window.shape[2], crop[1] - window.shape[3]
    logits = forward(F.pad(window, (0, max(pad_w, 0), 0, max(pad_h, 0))))
    return logits[:, :, :y2 - y1, :x2 - x1]


def _mmseg_uniform(x, crop, stride, forward=_fake_forward):
    """mmseg's slide_inference arithmetic: full-size sum and count, then divide."""
    preds = x.new_zeros((1, 3, *x.shape[2:]))
    count = x.new_zeros((1, 1, *x.shape[2:]))
    for box in slide_windows(*x.shape[2:], crop, stride):
        y1, y2, x1, x2 = box
        logits = _padded_window_logits(x, box, crop, forward)
        preds += F.pad(logits, (x1, preds.shape[3] - x2, y1, preds.shape[2] - y2))
        count[:, :, y1:y2, x1:x2] += 1
    return preds / count


def _gaussian_1d(crop, size):
    """An independent writing of the weights: sigma = crop / 8 about the window's
    centre, peak 1, floored, cut to ``size``."""
    values = [math.exp(-0.5 * ((i - (crop - 1) / 2) / (crop / 8)) ** 2) for i in range(crop)]
    peak = max(values)
    return torch.tensor([max(v / peak, GAUSSIAN_FLOOR) for v in values[:size]],
                        dtype=torch.float64)


def _full_size_weight_maps(shape, crop, stride, rows=None, cols=None):
    """(box, full-size float64 weight map) of each window, from the 1-D weights
    (default: :func:`_gaussian_1d`'s)."""
    maps = []
    for box in slide_windows(*shape, crop, stride):
        y1, y2, x1, x2 = box
        weight = torch.zeros(shape, dtype=torch.float64)
        weight[y1:y2, x1:x2] = ((_gaussian_1d(crop[0], y2 - y1) if rows is None
                                 else rows.double())[:, None]
                                * (_gaussian_1d(crop[1], x2 - x1) if cols is None
                                   else cols.double())[None, :])
        maps.append((box, weight))
    return maps


def _gaussian_reference(x, crop, stride, forward=_fake_forward):
    """The slow blend: an explicit full-size weight map per window, in float64."""
    preds = torch.zeros((1, 3, *x.shape[2:]), dtype=torch.float64)
    total = torch.zeros(x.shape[2:], dtype=torch.float64)
    for box, weight in _full_size_weight_maps(x.shape[2:], crop, stride):
        y1, y2, x1, x2 = box
        logits = _padded_window_logits(x, box, crop, forward).double()
        preds[:, :, y1:y2, x1:x2] += logits * weight[y1:y2, x1:x2]
        total += weight
    return (preds / total).float()


# ------------------------------------------------------------------- weights
@pytest.mark.parametrize('shape,crop,stride', GEOMETRIES)
def test_normalised_weights_of_the_covering_windows_sum_to_one(shape, crop, stride):
    """Each window's full-size weights divided by the accumulator's separable total
    (row sum x column sum of the 1-D weights it uses) sum to 1 at every pixel."""
    boxes = slide_windows(*shape, crop, stride)
    rows, cols = window_weights('gaussian', crop, (boxes[0][1] - boxes[0][0],
                                                   boxes[0][3] - boxes[0][2]))
    torch.testing.assert_close(rows.double(), _gaussian_1d(crop[0], len(rows)))
    torch.testing.assert_close(cols.double(), _gaussian_1d(crop[1], len(cols)))
    row_sum = torch.zeros(shape[0], dtype=torch.float64)
    col_sum = torch.zeros(shape[1], dtype=torch.float64)
    for y1, y2, _, _ in sorted({(b[0], b[1], 0, 0) for b in boxes}):
        row_sum[y1:y2] += rows.double()
    for _, _, x1, x2 in sorted({(0, 0, b[2], b[3]) for b in boxes}):
        col_sum[x1:x2] += cols.double()
    normaliser = row_sum[:, None] * col_sum[None, :]
    total = sum(weight / normaliser
                for _, weight in _full_size_weight_maps(shape, crop, stride, rows, cols))
    torch.testing.assert_close(total, torch.ones(shape, dtype=torch.float64),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize('shape,crop,stride', GEOMETRIES)
@pytest.mark.parametrize('batch_size', [1, 4])
def test_gaussian_of_constant_logits_is_that_constant(shape, crop, stride, batch_size):
    """Every pixel's weights sum to 1 in the accumulator itself: windows that all
    say 2.5 blend to 2.5 everywhere, border and corner pixels included."""
    x = _image(shape)
    got = _accumulated(x, crop, stride, batch_size, 'gaussian',
                       forward=lambda crops: torch.full((len(crops), 3, *crops.shape[2:]), 2.5))
    torch.testing.assert_close(got, torch.full_like(got, 2.5), rtol=0, atol=1e-5)


def test_weights_peak_at_the_window_centre_and_stay_positive():
    rows, cols = window_weights('gaussian', (64, 33), (64, 20))
    assert rows.shape == (64,) and cols.shape == (20,)
    assert float(rows.min()) == pytest.approx(GAUSSIAN_FLOOR)
    assert float(rows[31]) == float(rows[32]) == float(rows.max()) == 1.0
    assert float(cols[16]) == 1.0 and bool((cols[:16].diff() > 0).all())
    assert window_weights('uniform', (64, 33), (64, 20)) is None


# ------------------------------------------------------------------- uniform
@pytest.mark.parametrize('shape,crop,stride', GEOMETRIES)
@pytest.mark.parametrize('batch_size', [1, 3])
@pytest.mark.parametrize('blend', [None, 'uniform'])
def test_uniform_is_mmseg_averaging_to_the_bit(shape, crop, stride, batch_size, blend):
    x = _image(shape, seed=1)
    got = _accumulated(x, crop, stride, batch_size, blend)
    assert torch.equal(got, _mmseg_uniform(x, crop, stride))


def test_uniform_segmentor_equals_mmseg_stock_slide():
    """A seeded tiny model, 'uniform' given explicitly: the logits of mmseg's own
    EncoderDecoder.slide_inference (one window per forward), bit for bit."""
    slide_cfg = dict(mode='slide', crop_size=(24, 24), stride=(16, 16), batch_size=1,
                     window_blend='uniform')
    ours = _build(_cfg(test_cfg=slide_cfg))
    stock_cfg = copy.deepcopy(_cfg(test_cfg=slide_cfg))
    stock_cfg['type'] = 'EncoderDecoder'
    stock = MODELS.build(stock_cfg).eval()
    assert type(stock) is EncoderDecoder
    stock.load_state_dict(ours.state_dict())
    stock.test_cfg = type('Cfg', (dict, ), {'__getattr__': dict.__getitem__})(
        slide_cfg)  # mmseg reads test_cfg.stride as an attribute
    x = _image((50, 41), seed=2)
    with torch.no_grad():
        assert torch.equal(ours.inference(x, _metas(x)), stock.slide_inference(x, _metas(x)))


# ------------------------------------------------------------------ gaussian
@pytest.mark.parametrize('shape,crop,stride', GEOMETRIES)
@pytest.mark.parametrize('batch_size', [1, 4])
def test_gaussian_equals_a_full_size_weight_map(shape, crop, stride, batch_size):
    x = _image(shape, seed=3)
    got = _accumulated(x, crop, stride, batch_size, 'gaussian')
    torch.testing.assert_close(got, _gaussian_reference(x, crop, stride), rtol=0, atol=1e-5)
    uniform = _accumulated(x, crop, stride, batch_size, 'uniform')
    assert float((got - uniform).abs().max()) > 1e-2


def test_segmentor_and_scan_path_give_one_mask_under_gaussian():
    """slide_inference and predict_scan share the accumulator and both read
    test_cfg.window_blend: the same logits' classes, and not uniform's."""
    from artseg_mm.apis.scan_inference import predict_scan
    slide_cfg = dict(mode='slide', crop_size=(24, 24), stride=(16, 16), batch_size=3,
                     window_blend='gaussian')
    model = _build(_cfg(test_cfg=slide_cfg))
    image = (np.random.default_rng(4).random((61, 47, 3)) * 255).astype(np.uint8)
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None]
    with torch.no_grad():
        gaussian = model.inference(x, _metas(x))
        model.test_cfg = dict(slide_cfg, window_blend='uniform')
        uniform = model.inference(x, _metas(x))
        model.test_cfg = slide_cfg
    assert not torch.equal(gaussian, uniform)
    scan = predict_scan(model, image)
    np.testing.assert_array_equal(scan.ids, gaussian[0].argmax(0).numpy().astype(np.uint8))
    assert scan.confidence is None


# -------------------------------------------------------------------- errors
def test_unknown_blend_is_refused_naming_the_key():
    x = _image((20, 20))
    with pytest.raises(ValueError, match=r"test_cfg.window_blend .*'uniform', 'gaussian'.*'hann'"):
        _accumulated(x, (16, 16), (8, 8), 1, 'hann')
    with pytest.raises(ValueError, match='test_cfg.window_blend'):
        window_blend(dict(window_blend='Gaussian'))
    assert window_blend(dict(mode='slide')) == window_blend(None) == 'uniform'
    for mode in ('slide', 'whole'):
        model = _build(_cfg(test_cfg=dict(mode=mode, crop_size=(16, 16), stride=(8, 8),
                                          window_blend='median')))
        with torch.no_grad(), pytest.raises(ValueError, match='test_cfg.window_blend'):
            model.inference(x, _metas(x))
