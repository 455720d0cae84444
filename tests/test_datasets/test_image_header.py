"""Bit depth and transparency from the file's header: 12-bit data in 16-bit files
scaled by its declared bits (a warning when nothing declares them), fully
transparent pixels given to inference, 8/16-bit files without either unchanged."""
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

import artseg_mm  # noqa: F401
from artseg_mm.datasets.image_header import (LowBitDepthWarning, ImageHeader,
                                             read_image_header)


def picture(h=40, w=60, seed=0) -> np.ndarray:
    """An 8-bit BGR picture with a full 0..255 range."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[0, 0] = 255
    return image


def load(path):
    from mmseg.registry import TRANSFORMS
    loader = TRANSFORMS.build(dict(type='LoadArtSegImageFromFile'))
    return loader(dict(img_path=str(path)))


def tiff_12bit_grey(path, grey8: np.ndarray, declare: bool) -> None:
    data = np.round(grey8.astype(np.float64) * 4095 / 255).astype(np.uint16)
    info = TiffImagePlugin.ImageFileDirectory_v2()
    if declare:
        info[281] = 4095  # MaxSampleValue
    Image.fromarray(data).save(path, tiffinfo=info)  # mode I;16


def with_sbit(png: bytes, bits: int) -> bytes:
    """The PNG with an sBIT chunk (``bits`` per colour channel) after IHDR."""
    ihdr_end = 8 + 8 + 13 + 4
    body = b'sBIT' + bytes([bits] * 3)
    chunk = struct.pack('>I', 3) + body + struct.pack('>I', zlib.crc32(body))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def test_12_bit_tiff_with_max_sample_value_is_scaled_by_its_bits(tmp_path):
    grey8 = cv2.cvtColor(picture(), cv2.COLOR_BGR2GRAY)
    tiff_12bit_grey(tmp_path / 'scan.tif', grey8, declare=True)
    assert read_image_header(str(tmp_path / 'scan.tif')) == ImageHeader(16, 12, False)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LowBitDepthWarning)
        image = load(tmp_path / 'scan.tif')['img']
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert np.abs(image[..., 0].astype(int) - grey8).max() <= 1  # full range, not near black


def test_12_bit_tiff_without_a_declaration_is_warned_about(tmp_path):
    grey8 = cv2.cvtColor(picture(), cv2.COLOR_BGR2GRAY)
    tiff_12bit_grey(tmp_path / 'scan.tif', grey8, declare=False)
    with pytest.warns(LowBitDepthWarning, match='fill only the low bits'):
        image = load(tmp_path / 'scan.tif')['img']
    assert image.max() <= 16  # read as 16-bit, as the warning says


def test_16_bit_rgb_png_with_sbit_is_scaled_by_its_bits(tmp_path):
    image8 = picture()
    data = np.round(image8.astype(np.float64) * 1023 / 255).astype(np.uint16)  # 10-bit
    ok, png = cv2.imencode('.png', data)
    path = tmp_path / 'scan.png'
    path.write_bytes(with_sbit(png.tobytes(), 10))
    assert read_image_header(str(path)) == ImageHeader(16, 10, False)
    assert np.abs(load(path)['img'].astype(int) - image8).max() <= 1


def test_full_16_bit_and_8_bit_files_read_as_before(tmp_path):
    image8 = picture()
    cv2.imwrite(str(tmp_path / 'a.tif'), image8.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / 'b.png'), image8)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LowBitDepthWarning)
        for name in ('a.tif', 'b.png'):
            expected = cv2.imread(str(tmp_path / name),
                                  cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            results = load(tmp_path / name)
            np.testing.assert_array_equal(results['img'], expected)
            assert 'transparent' not in results


@pytest.mark.parametrize('mode', ['RGBA', 'LA', 'P'])
def test_fully_transparent_pixels_are_given_with_the_colour_as_before(tmp_path, mode):
    rgb = picture()[..., ::-1]
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :25] = 0  # a cut-out: the left part is no part of the object
    alpha[0, 30] = 1   # nearly transparent is still the object
    if mode == 'RGBA':
        Image.fromarray(np.dstack([rgb, alpha]), 'RGBA').save(tmp_path / 's.png')
    elif mode == 'LA':
        Image.fromarray(np.dstack([rgb[..., 0], alpha]), 'LA').save(tmp_path / 's.png')
    else:
        index = (alpha > 0).astype(np.uint8)
        pal = Image.fromarray(index, 'P')
        pal.putpalette([0, 0, 0, 200, 100, 50])
        pal.save(tmp_path / 's.png', transparency=0)
    path = tmp_path / 's.png'
    assert read_image_header(str(path)).has_alpha
    results = load(path)
    np.testing.assert_array_equal(results['transparent'], alpha == 0)
    expected = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    np.testing.assert_array_equal(results['img'], expected)


def test_an_opaque_alpha_channel_gives_no_transparency(tmp_path):
    cv2.imwrite(str(tmp_path / 's.png'), cv2.cvtColor(picture(), cv2.COLOR_BGR2BGRA))
    assert 'transparent' not in load(tmp_path / 's.png')
