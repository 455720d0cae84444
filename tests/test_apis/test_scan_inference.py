"""Bounded-memory scan inference gives the segmentor's sliding-window mask."""
import numpy as np
import pytest
import torch

from apis_helpers import write_work_dir


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from artseg_mm.apis import init_model
    return init_model(str(write_work_dir(tmp_path_factory.mktemp('scan'))))


def _slide_mask(model, image):
    """The segmentor's own predict (batched sliding windows, float logits for
    the whole image) on the same image."""
    batch = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(image.transpose(2, 0, 1).copy())],
             data_samples=None), False)
    shape = image.shape[:2]
    with torch.no_grad():
        logits = model.inference(batch['inputs'], [dict(ori_shape=shape, img_shape=shape,
                                                        pad_shape=shape)])
    return logits[0].argmax(0).numpy().astype(np.uint8)


@pytest.mark.parametrize('window_batch', [1, 3, 7])
def test_same_mask_as_sliding_window_inference(model, window_batch):
    from artseg_mm.apis import predict_class_ids
    rng = np.random.default_rng(window_batch)
    image = (rng.random((150, 230, 3)) * 255).astype(np.uint8)
    image[40:90, 60:160] = 250
    model.test_cfg['batch_size'] = window_batch
    done = []
    mask = predict_class_ids(model, image, progress=done.append)
    expected = _slide_mask(model, image)
    assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
    assert len(np.unique(expected)) == 2
    np.testing.assert_array_equal(mask, expected)
    from artseg_mm.apis import count_windows
    assert sum(done) == count_windows(model, image.shape) == 4 * 6


def test_image_smaller_than_the_window(model):
    from artseg_mm.apis import predict_class_ids
    image = (np.random.default_rng(0).random((45, 50, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(predict_class_ids(model, image), _slide_mask(model, image))


def test_band_stays_within_the_open_windows(model, monkeypatch):
    """The float accumulator never spans more rows than the windows still
    open (crop + stride per window row of a batch), whatever the image height."""
    import artseg_mm.apis.scan_inference as scan
    heights = []
    real_zeros = torch.Tensor.new_zeros

    def recording_new_zeros(self, size, *args, **kwargs):
        out = real_zeros(self, size, *args, **kwargs)
        if len(size) == 3:
            heights.append(self.shape[1] + size[1])
        return out
    monkeypatch.setattr(torch.Tensor, 'new_zeros', recording_new_zeros)
    model.test_cfg['batch_size'] = 3
    image = np.zeros((600, 100, 3), dtype=np.uint8)
    scan.predict_class_ids(model, image)
    assert heights and max(heights) <= 64 + 40 * 2
    assert max(heights) < image.shape[0] / 4


def test_wrong_image_type_is_refused(model):
    from artseg_mm.apis import predict_class_ids
    with pytest.raises(ValueError, match='H x W x 3 uint8'):
        predict_class_ids(model, np.zeros((10, 10), dtype=np.float32))


def test_scan_speed_methods_agree(tmp_path):
    """benchmark.py --scan's three methods give one mask on the same model."""
    from artseg_mm.analysis.scan_speed import METHODS, run_method
    work_dir = write_work_dir(tmp_path)
    results = {m: run_method(m, str(work_dir), None, 96) for m in METHODS}
    for method, result in results.items():
        assert result['mask'].shape == (96, 96) and result['windows'] == 4, method
        assert result['seconds'] > 0 and result['peak_mib'] >= result['base_mib']
        np.testing.assert_array_equal(result['mask'], results['infer']['mask'], method)


def test_scan_speed_on_an_untrained_config_fetches_no_weights(tmp_path, monkeypatch):
    """--scan on a config alone (pretrained=True, no checkpoint): no method,
    MMSegInferencer's own build included, asks timm for pretrained weights."""
    import timm.models._builder as timm_builder
    from mmengine import Config

    from artseg_mm.analysis.scan_speed import run_method

    def no_fetch(*args, **kwargs):
        raise AssertionError('pretrained weights were fetched')
    monkeypatch.setattr(timm_builder, 'load_pretrained', no_fetch)
    cfg = Config.fromfile(str(write_work_dir(tmp_path) / 'tiny_convnext.py'))
    cfg.model.backbone.pretrained = True
    cfg.dump(str(tmp_path / 'untrained.py'))
    result = run_method('mmseg_inferencer', str(tmp_path / 'untrained.py'), None, 64)
    assert result['mask'].shape == (64, 64) and result['windows'] == 1
