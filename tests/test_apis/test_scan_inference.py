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


@pytest.mark.parametrize('shape', [(45, 50), (12, 9), (5, 70)])
def test_image_smaller_than_the_window(model, shape, tmp_path):
    """Padded to the window (also under the encoder's 32 px stride): the scan
    path, the segmentor and mmseg's inference_model give one mask."""
    import cv2

    from artseg_mm.apis import inference_model, predict_class_ids
    image = (np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.uint8)
    mask = predict_class_ids(model, image)
    assert mask.shape == shape
    np.testing.assert_array_equal(mask, _slide_mask(model, image))
    path = tmp_path / 'small.png'
    cv2.imwrite(str(path), image)
    upstream = inference_model(model, str(path)).pred_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(mask, upstream)


def test_band_stays_within_the_open_windows(model, monkeypatch):
    """The float accumulator never spans more rows than the windows still
    open (crop + stride per window row of a batch), whatever the image height."""
    import artseg_mm.apis.scan_inference as scan
    heights = []
    real_zeros = torch.Tensor.new_zeros

    def recording_new_zeros(self, size, *args, **kwargs):
        out = real_zeros(self, size, *args, **kwargs)
        if isinstance(size, (tuple, list)) and len(size) == 4:  # the band: (images, classes, rows, width)
            heights.append(size[2] + (self.shape[2] if self.dim() == 4 else 0))
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

