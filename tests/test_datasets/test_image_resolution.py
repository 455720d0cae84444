"""The physical resolution read from image headers: TIFF (inch, cm, absent unit),
PNG pHYs, JPEG JFIF and EXIF; None where a file declares no size (no tags, an
aspect ratio only, zero values); a note on 72/96 dpi; the user's own values."""
import math
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from artseg_mm.datasets.artefact_classes import FULL_CLASSES, THIN_CLASSES
from artseg_mm.datasets.image_resolution import (Resolution, read_resolution,
                                                 resolution_from_dpi,
                                                 resolution_from_px_per_mm)


def picture(h=30, w=40) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def assert_px_per_mm(resolution: Resolution, x: float, y: float) -> None:
    assert resolution is not None
    assert resolution.px_per_mm_x == pytest.approx(x, rel=1e-4)
    assert resolution.px_per_mm_y == pytest.approx(y, rel=1e-4)


def png_with_phys(path, px_per_unit_x: int, px_per_unit_y: int, unit: int) -> None:
    """A PNG with a pHYs chunk written byte by byte (Pillow writes only unit 1)."""
    picture().save(path)
    data = path.read_bytes()
    body = b'pHYs' + struct.pack('>IIB', px_per_unit_x, px_per_unit_y, unit)
    chunk = struct.pack('>I', 9) + body + struct.pack('>I', zlib.crc32(body))
    ihdr_end = 8 + 8 + 13 + 4
    path.write_bytes(data[:ihdr_end] + chunk + data[ihdr_end:])


def jpeg_with_jfif(path, unit: int, x_density: int, y_density: int) -> None:
    """A JPEG whose JFIF segment declares ``unit`` and the densities."""
    picture().save(path, dpi=(300, 300))
    data = bytearray(path.read_bytes())
    assert data[6:11] == b'JFIF\x00'  # SOI, APP0 marker, length, identifier
    data[13] = unit
    data[14:18] = struct.pack('>HH', x_density, y_density)
    path.write_bytes(bytes(data))


def tiff_with_tags(path, tags: dict) -> None:
    info = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, value in tags.items():
        info[tag] = value
    picture().save(path, tiffinfo=info)


def test_png_phys_in_metres_gives_pixels_per_mm(tmp_path):
    png_with_phys(tmp_path / 'scan.png', 23622, 47244, unit=1)
    resolution = read_resolution(str(tmp_path / 'scan.png'))
    assert_px_per_mm(resolution, 23.622, 47.244)
    assert resolution.source == 'PNG pHYs'
    assert resolution.note is None


def test_png_saved_with_dpi_by_pillow(tmp_path):
    picture().save(tmp_path / 'scan.png', dpi=(600, 600))
    resolution = read_resolution(str(tmp_path / 'scan.png'))
    assert_px_per_mm(resolution, 600 / 25.4, 600 / 25.4)
    assert resolution.dpi_x == pytest.approx(600, abs=0.01)


@pytest.mark.parametrize('x, y', [(3000, 3000), (0, 0), (23622, 0)])
def test_png_phys_aspect_ratio_or_zero_gives_none(tmp_path, x, y):
    """Unit 0 declares only the pixels' shape; zero pixels per metre declares nothing."""
    png_with_phys(tmp_path / 'scan.png', x, y, unit=0 if x == 3000 else 1)
    assert read_resolution(str(tmp_path / 'scan.png')) is None


def test_png_without_phys_gives_none(tmp_path):
    picture().save(tmp_path / 'scan.png')
    assert read_resolution(str(tmp_path / 'scan.png')) is None


def test_tiff_in_inch(tmp_path):
    picture().save(tmp_path / 'scan.tif', dpi=(600, 1200))
    resolution = read_resolution(str(tmp_path / 'scan.tif'))
    assert_px_per_mm(resolution, 600 / 25.4, 1200 / 25.4)
    assert resolution.source == 'TIFF XResolution/ResolutionUnit'
    assert resolution.note is None


def test_tiff_in_cm(tmp_path):
    tiff_with_tags(tmp_path / 'scan.tif', {282: 200.0, 283: 100.0, 296: 3})
    assert_px_per_mm(read_resolution(str(tmp_path / 'scan.tif')), 20.0, 10.0)


def test_tiff_without_unit_is_read_as_inch_with_a_note(tmp_path):
    """TIFF 6.0 defines an absent ResolutionUnit as inch; the report says so."""
    path = tmp_path / 'scan.tif'
    tiff_with_tags(path, {282: 400.0, 283: 400.0})
    with Image.open(path) as image:
        assert 296 not in image.tag_v2  # the file really lacks the unit
    resolution = read_resolution(str(path))
    assert_px_per_mm(resolution, 400 / 25.4, 400 / 25.4)
    assert 'ResolutionUnit absent' in resolution.note


@pytest.mark.parametrize('tags', [
    {282: 300.0, 283: 300.0, 296: 1},  # no absolute unit
    {282: 300.0, 283: 300.0, 296: 7},  # no such unit
    {282: 0.0, 283: 0.0, 296: 2},  # zero
    {282: TiffImagePlugin.IFDRational(300, 0), 283: 300.0, 296: 2},  # nan
    {282: 300.0, 296: 2},  # YResolution missing
])
def test_tiff_without_a_usable_resolution_gives_none(tmp_path, tags):
    tiff_with_tags(tmp_path / 'scan.tif', tags)
    assert read_resolution(str(tmp_path / 'scan.tif')) is None


def test_tiff_without_resolution_tags_gives_none(tmp_path):
    picture().save(tmp_path / 'scan.tif')
    assert read_resolution(str(tmp_path / 'scan.tif')) is None


def test_jpeg_jfif_dpi(tmp_path):
    picture().save(tmp_path / 'scan.jpg', dpi=(400, 400))
    resolution = read_resolution(str(tmp_path / 'scan.jpg'))
    assert_px_per_mm(resolution, 400 / 25.4, 400 / 25.4)
    assert resolution.source == 'JPEG JFIF'


def test_jpeg_jfif_dots_per_cm(tmp_path):
    jpeg_with_jfif(tmp_path / 'scan.jpg', unit=2, x_density=100, y_density=50)
    assert_px_per_mm(read_resolution(str(tmp_path / 'scan.jpg')), 10.0, 5.0)


def exif_resolution(x, y, unit=2) -> Image.Exif:
    exif = Image.Exif()
    exif[282] = TiffImagePlugin.IFDRational(x)
    exif[283] = TiffImagePlugin.IFDRational(y)
    exif[296] = unit
    return exif


def test_jpeg_with_exif_resolution_only(tmp_path):
    path = tmp_path / 'scan.jpg'
    picture().save(path, exif=exif_resolution(800, 800))
    with Image.open(path) as image:
        assert image.info.get('jfif_unit', 0) == 0  # JFIF declares an aspect ratio only
    resolution = read_resolution(str(path))
    assert_px_per_mm(resolution, 800 / 25.4, 800 / 25.4)
    assert resolution.source.startswith('EXIF')


def test_jpeg_jfif_wins_over_exif(tmp_path):
    picture().save(tmp_path / 'scan.jpg', dpi=(300, 300), exif=exif_resolution(800, 800))
    resolution = read_resolution(str(tmp_path / 'scan.jpg'))
    assert_px_per_mm(resolution, 300 / 25.4, 300 / 25.4)
    assert resolution.source == 'JPEG JFIF'


def test_jpeg_with_zero_jfif_density_falls_back_to_exif_or_none(tmp_path):
    jpeg_with_jfif(tmp_path / 'scan.jpg', unit=1, x_density=0, y_density=0)
    assert read_resolution(str(tmp_path / 'scan.jpg')) is None


def test_jpeg_without_resolution_gives_none_not_72_dpi(tmp_path):
    """Pillow's own ``info['dpi']`` falls back to 72 for some JPEGs: not used."""
    picture().save(tmp_path / 'plain.jpg')
    assert read_resolution(str(tmp_path / 'plain.jpg')) is None
    picture().save(tmp_path / 'empty_exif.jpg', exif=Image.Exif())
    with Image.open(tmp_path / 'empty_exif.jpg') as image:
        assert image.info['dpi'] == (72, 72)  # Pillow's fallback
    assert read_resolution(str(tmp_path / 'empty_exif.jpg')) is None
    picture().save(tmp_path / 'unitless.jpg', exif=exif_resolution(300, 300, unit=1))
    assert read_resolution(str(tmp_path / 'unitless.jpg')) is None


@pytest.mark.parametrize('name, save', [
    ('scan.jpg', dict(dpi=(72, 72))),
    ('scan.png', dict(dpi=(72, 72))),
    ('scan.tif', dict(dpi=(96, 96))),
])
def test_software_default_dpi_gets_a_note(tmp_path, name, save):
    picture().save(tmp_path / name, **save)
    resolution = read_resolution(str(tmp_path / name))
    assert resolution is not None
    assert str(save['dpi'][0]) in resolution.note
    assert '--dpi' in resolution.note


def test_other_formats_give_none(tmp_path):
    picture().save(tmp_path / 'scan.bmp')
    assert read_resolution(str(tmp_path / 'scan.bmp')) is None


def test_given_resolution():
    assert resolution_from_dpi(600) == Resolution(600 / 25.4, 600 / 25.4, 'given', None)
    assert resolution_from_px_per_mm(20) == Resolution(20.0, 20.0, 'given', None)
    assert resolution_from_dpi(72).note is None  # the user said so


@pytest.mark.parametrize('value', [0, -300, math.nan, math.inf, 'many', None])
def test_given_resolution_must_be_a_positive_number(value):
    with pytest.raises(ValueError, match='dpi .*positive'):
        resolution_from_dpi(value)
    with pytest.raises(ValueError, match='pixels per millimetre must be a positive'):
        resolution_from_px_per_mm(value)


def test_thin_classes_are_class_names():
    assert set(THIN_CLASSES) <= set(FULL_CLASSES)
    assert set(THIN_CLASSES) == {'Scratch', 'Hair', 'Fold', 'Cracks'}
