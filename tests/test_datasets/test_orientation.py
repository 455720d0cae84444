"""EXIF orientation: pixels used as stored (image and mask stay aligned), with a warning,
in the dataset loader, the converter and tools/infer.py's loader."""
import io
import sys

import numpy as np
import pytest
from PIL import Image

import artseg_mm  # noqa: F401
from artseg_mm.datasets.orientation import EXIF_ORIENTATION, ExifOrientationWarning
from conftest import REPO

sys.path.insert(0, str(REPO / 'tests' / 'test_data_prep'))
from parquet_helpers import convert, make_sample, write_shards  # noqa: E402


def rotated_jpeg(height=20, width=40, orientation=6) -> bytes:
    """A JPEG stored height x width whose EXIF tag says: turn it by 90 degrees."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, :width // 2] = (250, 10, 10)  # left half red as stored
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format='JPEG', quality=95, exif=exif)
    return out.getvalue()


def test_dataset_loader_keeps_stored_pixels_and_warns(tmp_path):
    from mmseg.registry import TRANSFORMS
    path = tmp_path / 'scan.jpg'
    path.write_bytes(rotated_jpeg())
    mask = tmp_path / 'scan.png'
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(mask)
    load_image = TRANSFORMS.build(dict(type='LoadArtSegImageFromFile'))
    load_mask = TRANSFORMS.build(dict(type='LoadArtSegAnnotations'))
    with pytest.warns(ExifOrientationWarning, match='orientation 6: its pixels are used as'):
        results = load_image(dict(img_path=str(path)))
    assert results['img'].shape == (20, 40, 3)  # cv2's 'color' would give 40 x 20
    assert results['img'][:, :20, 2].mean() > 200  # red (BGR) on the left, as stored
    results.update(seg_map_path=str(mask), reduce_zero_label=False, seg_fields=[])
    assert load_mask(results)['gt_seg_map'].shape == (20, 40)  # the mask fits


def test_converter_keeps_stored_pixels_and_warns(tmp_path):
    sample = make_sample(0, h=20, w=40)
    sample['image'] = dict(bytes=rotated_jpeg(), path='art_000.jpg')
    src = write_shards(tmp_path / 'raw', [sample] + [make_sample(i, h=20, w=40)
                                                      for i in range(1, 4)])
    with pytest.warns(ExifOrientationWarning, match="row 'art_000'"):
        summary = convert(src, tmp_path / 'out', val=1, test=0)
    assert summary['skipped'] == []
    written = list((tmp_path / 'out' / 'img_dir').glob('*/art_000.png'))
    assert np.asarray(Image.open(written[0])).shape == (20, 40, 3)


def test_infer_loader_follows_the_same_rule(tmp_path):
    sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
    from apis_helpers import DEMO_CONFIG
    from mmengine.config import Config

    from artseg_mm.apis import image_loader
    path = tmp_path / 'scan.jpg'
    path.write_bytes(rotated_jpeg())
    with pytest.warns(ExifOrientationWarning):
        image = image_loader(Config.fromfile(str(DEMO_CONFIG)))(str(path))
    assert image.shape == (20, 40, 3)
