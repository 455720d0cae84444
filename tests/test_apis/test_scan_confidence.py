"""predict_scan's per-pixel confidence (uint8, value / 255 = the top class's
probability of the blended logits), made band by band; ScanInferencer.predict;
window_blend reaching ScanInferencer and an exported model."""
import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from apis_helpers import write_work_dir
from artseg_mm.apis.scan_inference import (CONFIDENCE_SCALE, ScanPrediction,
                                           predict_class_ids, predict_scan)
from tiny_segmentor import build as _build
from tiny_segmentor import metas as _metas
from tiny_segmentor import tiny_cfg as _cfg

SLIDE = dict(mode='slide', crop_size=(24, 24), stride=(16, 16), batch_size=3)


def _sigmoid_cfg(test_cfg):
    """The tiny model with one sigmoid channel (two classes, threshold 0.3)."""
    cfg = _cfg(test_cfg=test_cfg)
    cfg['decode_head'].update(num_classes=2, out_channels=1, threshold=0.3)
    return cfg


def _image(shape, seed=0):
    image = (np.random.default_rng(seed).random((*shape, 3)) * 255).astype(np.uint8)
    image[shape[0] // 3:shape[0] // 2, shape[1] // 4:shape[1] // 2] = 240
    return image


def _full_logits(model, image):
    """The segmentor's own full-image (blended) logits, (C, H, W)."""
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None]
    with torch.no_grad():
        return model.inference(x, _metas(x))[0]


@pytest.mark.parametrize('blend', ['uniform', 'gaussian'])
def test_confidence_is_the_full_image_softmax_top_probability(blend):
    model = _build(_cfg(test_cfg=dict(SLIDE, window_blend=blend)))
    image = _image((61, 47))
    prediction = predict_scan(model, image, confidence=True)
    assert isinstance(prediction, ScanPrediction)
    assert prediction.confidence.dtype == np.uint8
    assert prediction.confidence.shape == image.shape[:2]
    logits = _full_logits(model, image)
    top = logits.softmax(dim=0).amax(dim=0).numpy()
    expected = np.round(top * CONFIDENCE_SCALE)
    assert np.abs(prediction.confidence.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(prediction.ids, logits.argmax(0).numpy().astype(np.uint8))
    # 3 classes: never under a third, and the image has unsure pixels and sure ones
    assert prediction.confidence.min() >= CONFIDENCE_SCALE // 3
    assert prediction.confidence.max() > prediction.confidence.min()


def test_ids_are_unchanged_and_confidence_only_on_request():
    model = _build(_cfg(test_cfg=dict(SLIDE, window_blend='gaussian')))
    image = _image((40, 70), seed=1)
    plain = predict_scan(model, image)
    assert plain.confidence is None
    np.testing.assert_array_equal(plain.ids, predict_class_ids(model, image))
    np.testing.assert_array_equal(plain.ids, predict_scan(model, image, confidence=True).ids)


@pytest.mark.parametrize('blend', ['uniform', 'gaussian'])
def test_one_channel_confidence_is_the_predicted_class_probability(blend):
    model = _build(_sigmoid_cfg(dict(SLIDE, window_blend=blend)))
    assert model.out_channels == 1
    image = _image((45, 52), seed=2)
    prediction = predict_scan(model, image, confidence=True)
    p = _full_logits(model, image)[0].sigmoid().numpy()
    expected = np.round(np.where(p > 0.3, p, 1 - p) * CONFIDENCE_SCALE)
    assert np.abs(prediction.confidence.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(prediction.ids, (p > 0.3).astype(np.uint8))
    unsure_damage = (p > 0.3) & (p < 0.5)  # predicted damage, yet less likely than not
    assert unsure_damage.any(), 'the seeded image should hold such pixels'
    assert (prediction.confidence[unsure_damage] <= CONFIDENCE_SCALE // 2 + 1).all()


def test_bad_window_blend_is_refused_by_the_scan_path():
    model = _build(_cfg(test_cfg=dict(SLIDE, window_blend='hann')))
    with pytest.raises(ValueError, match='test_cfg.window_blend'):
        predict_scan(model, _image((30, 30)), confidence=True)


# ----------------------------------------------------- memory on a large image
@contextmanager
def largest_float_storage():
    """Records the bytes of the largest float tensor storage any torch op makes or
    returns while inside (window batches, bands, ... and any full-size map)."""
    record = {'bytes': 0, 'shape': None}

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if (isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
                        and tensor.untyped_storage().nbytes() > record['bytes']):
                    record.update(bytes=tensor.untyped_storage().nbytes(),
                                  shape=tuple(tensor.shape))
            return out
    with Watch():
        yield record


def test_large_image_confidence_without_a_full_size_float_map():
    """1500 x 1200 with 64 px windows, 4 per batch: no torch op makes a float
    tensor of half the image's pixels (the band of open windows is a few rows of
    it, a window batch's features less; a full-size float map, of any class
    count, is more), and the numpy allocations (traced) are the two uint8
    outputs, not a float map beside them."""
    h, w = 1500, 1200
    model = _build(_cfg(pointwise=True, test_cfg=dict(
        mode='slide', crop_size=(64, 64), stride=(48, 48), batch_size=4,
        window_blend='gaussian')))
    image = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with largest_float_storage() as check:  # the check itself sees a full-size map
        torch.zeros(h, w)
    assert check['bytes'] == 4 * h * w
    bands = []
    tracemalloc.start()
    try:
        with largest_float_storage() as largest:
            prediction = predict_scan(model, image, confidence=True,
                                      progress=bands.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prediction.confidence.shape == (h, w) and sum(bands) == 31 * 25
    assert 0 < largest['bytes'] < 4 * h * w / 2, largest
    assert 2 * h * w <= peak < 3 * h * w  # ids and confidence are traced: the probe works
    assert prediction.confidence.min() >= CONFIDENCE_SCALE // 3


# ------------------------------------------------ ScanInferencer and exports
@pytest.fixture(scope='module')
def gaussian_work_dir(tmp_path_factory):
    return write_work_dir(tmp_path_factory.mktemp('blend'),
                          cfg_options={'model.test_cfg.window_blend': 'gaussian'})


def test_inferencer_predict_confidence_and_transparency(gaussian_work_dir):
    from artseg_mm.apis import ScanInferencer, init_model
    inferencer = ScanInferencer(str(gaussian_work_dir))
    assert inferencer.model.test_cfg['window_blend'] == 'gaussian'
    image = _image((90, 130), seed=4)
    transparent = np.zeros(image.shape[:2], dtype=bool)
    transparent[:10, :20] = True
    prediction = inferencer.predict(image, transparent=transparent, confidence=True)
    expected = predict_scan(init_model(str(gaussian_work_dir)), image, confidence=True)
    assert (prediction.ids[transparent] == 255).all()
    assert (prediction.confidence[transparent] == 0).all()
    np.testing.assert_array_equal(prediction.ids[~transparent], expected.ids[~transparent])
    np.testing.assert_array_equal(prediction.confidence[~transparent],
                                  expected.confidence[~transparent])
    np.testing.assert_array_equal(inferencer(image, transparent=transparent), prediction.ids)
    assert inferencer.predict(image).confidence is None
    with pytest.raises(ValueError, match='test_cfg.window_blend'):
        ScanInferencer(str(gaussian_work_dir),
                       cfg_options={'model.test_cfg.window_blend': 'box'})


def test_exported_model_blends_as_its_config_says(gaussian_work_dir, tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.deployment import ExportedSegmentor, export_model
    model = init_model(str(gaussian_work_dir))
    path = tmp_path / 'model.pt'
    export_model(model, 'torchscript', str(path))
    windows = ExportedSegmentor(path).window_model()
    assert windows.test_cfg['window_blend'] == 'gaussian'
    image = _image((100, 90), seed=5)
    got = predict_scan(windows, image, confidence=True)
    expected = predict_scan(model, image, confidence=True)
    np.testing.assert_array_equal(got.ids, expected.ids)
    assert np.abs(got.confidence.astype(int) - expected.confidence).max() <= 1
    uniform = ExportedSegmentor(path, cfg_options={'model.test_cfg.window_blend': 'uniform'})
    assert uniform.window_model().test_cfg['window_blend'] == 'uniform'
    with pytest.raises(ValueError, match=r'model\.pt.*test_cfg\.window_blend'):
        ExportedSegmentor(path, cfg_options={'model.test_cfg.window_blend': 'box'})
