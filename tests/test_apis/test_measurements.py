"""Damage measurements on drawn masks of known geometry: areas within 1 % of the
drawn shapes, skeleton lengths within 3 % of the drawn lines at any angle and
along curves, anisotropic pixels, region counts, ignored and clean pixels, and
the record without a scale."""
import json
import math

import cv2
import numpy as np
import pytest

from artseg_mm.apis.measurements import (ClassMeasure, measure_classes,
                                         measurement_record, skeleton_length)
from artseg_mm.datasets.artefact_classes import (BINARY_CLASSES, FULL_CLASSES,
                                                 IGNORE_INDEX)
from artseg_mm.datasets.image_resolution import Resolution, resolution_from_dpi

DPI_600 = resolution_from_dpi(600)
SCRATCH, STAINING, CRACKS, DUST = (FULL_CLASSES.index(name) for name in
                                   ('Scratch', 'Staining', 'Cracks', 'Dust'))


def blank(h=1000, w=1000) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


def line_at(angle_deg: float, length: float, thickness: int, shape=(1000, 1000)):
    """A mask holding a Scratch line of ``length`` px centred in it, and the line's
    end points (sub-pixel, drawn with 8 fractional bits)."""
    mask = blank(*shape)
    centre = np.array([shape[1] / 2, shape[0] / 2])
    half = 0.5 * length * np.array([math.cos(math.radians(angle_deg)),
                                    -math.sin(math.radians(angle_deg))])
    shift = 8
    p0, p1 = (np.round((centre + s * half) * 2 ** shift).astype(int) for s in (-1, 1))
    cv2.line(mask, tuple(map(int, p0)), tuple(map(int, p1)), SCRATCH, thickness,
             cv2.LINE_8, shift)
    return mask


def test_rectangle_and_circle_areas_at_600_dpi():
    mask = blank()
    mask[100:400, 100:700] = STAINING  # 300 x 600 px
    cv2.circle(mask, (500, 700), 150, DUST, thickness=-1)
    measures = measure_classes(mask, FULL_CLASSES, DPI_600)
    mm_per_px = 25.4 / 600
    staining, dust = measures['Staining'], measures['Dust']
    assert staining.pixels == 300 * 600
    assert staining.area_mm2 == pytest.approx(300 * 600 * mm_per_px ** 2, rel=0.01)
    assert staining.area_cm2 == pytest.approx(staining.area_mm2 / 100)
    assert dust.area_mm2 == pytest.approx(math.pi * (150 * mm_per_px) ** 2, rel=0.01)
    assert staining.regions == dust.regions == 1
    assert staining.largest_region_px == staining.pixels
    assert staining.largest_region_mm2 == pytest.approx(staining.area_mm2)
    assert staining.length_px is None and dust.length_px is None  # not thin classes


def test_anisotropic_pixels_area():
    """20 px/mm across, 10 px/mm down: 200 x 100 px is 10 mm x 10 mm."""
    mask = blank(300, 300)
    mask[50:150, 50:250] = STAINING
    resolution = Resolution(20.0, 10.0, 'given')
    assert measure_classes(mask, FULL_CLASSES, resolution)['Staining'].area_mm2 == \
        pytest.approx(100.0, rel=1e-9)


@pytest.mark.parametrize('angle', [0, 22.5, 45, 70, 135])
@pytest.mark.parametrize('thickness', [3, 5, 7])
def test_line_length_at_any_angle(angle, thickness):
    """Within 3 %: a skeleton pixel count (or a sqrt(2) chain code) is ~8 % off at
    22.5 degrees."""
    mask = line_at(angle, 400, thickness)
    scratch = measure_classes(mask, FULL_CLASSES, DPI_600)['Scratch']
    assert scratch.length_px == pytest.approx(400, rel=0.03)
    assert scratch.length_mm == pytest.approx(400 * 25.4 / 600, rel=0.03)
    assert scratch.regions == 1


def test_curved_arc_length():
    mask = blank()
    radius = 300
    cv2.ellipse(mask, (500, 600), (radius, radius), 0, 200, 340, SCRATCH, thickness=5)
    length = measure_classes(mask, FULL_CLASSES)['Scratch'].length_px
    assert length == pytest.approx(math.radians(140) * radius, rel=0.03)


def test_closed_ring_length_is_its_circumference():
    """A closed crack is traced along both of its sides: half of that is its length."""
    mask = blank()
    cv2.circle(mask, (500, 500), 200, CRACKS, thickness=4)
    cracks = measure_classes(mask, FULL_CLASSES)['Cracks']
    assert cracks.length_px == pytest.approx(2 * math.pi * 200, rel=0.03)


def test_several_lines_add_up():
    mask = line_at(0, 400, 5)
    cv2.line(mask, (100, 100), (100, 350), SCRATCH, 5)  # a second, separate scratch
    scratch = measure_classes(mask, FULL_CLASSES)['Scratch']
    assert scratch.regions == 2
    assert scratch.length_px == pytest.approx(650, rel=0.03)


@pytest.mark.parametrize('angle', [0, 90, 30])
def test_anisotropic_line_length(angle):
    """10 px/mm across and 20 px/mm down: each direction scaled by its own spacing."""
    mask = line_at(angle, 400, 5)
    resolution = Resolution(10.0, 20.0, 'given')
    dx, dy = 400 * math.cos(math.radians(angle)), 400 * math.sin(math.radians(angle))
    expected_mm = math.hypot(dx / 10, dy / 20)
    scratch = measure_classes(mask, FULL_CLASSES, resolution)['Scratch']
    assert scratch.length_mm == pytest.approx(expected_mm, rel=0.03)
    assert scratch.length_px == pytest.approx(400, rel=0.03)


def test_skeleton_length_of_an_empty_or_single_pixel_crop_is_zero():
    dot = np.zeros((5, 5), np.uint8)
    dot[2, 2] = 1
    assert skeleton_length(dot, DPI_600) == (0.0, 0.0)
    assert skeleton_length(np.zeros((5, 5), np.uint8)) == (0.0, None)


def test_region_count_leaves_out_specks_below_the_minimum():
    mask = blank(200, 200)
    mask[10:30, 10:30] = DUST  # 400 px
    mask[50:60, 50:60] = DUST  # 100 px
    mask[100:104, 100:104] = DUST  # 16 px: exactly the minimum, counted
    mask[150:153, 150:153] = DUST  # 9 px: a speck, not counted
    mask[180, 180] = mask[181, 181] = DUST  # diagonal neighbours: one 8-connected speck
    dust = measure_classes(mask, FULL_CLASSES, min_region_px=16)['Dust']
    assert dust.regions == 3
    assert dust.pixels == 400 + 100 + 16 + 9 + 2  # specks still count in the area
    assert dust.largest_region_px == 400
    assert measure_classes(mask, FULL_CLASSES, min_region_px=1)['Dust'].regions == 5
    assert measure_classes(mask, FULL_CLASSES, min_region_px=101)['Dust'].regions == 1


def test_touching_diagonally_is_one_region():
    mask = blank(100, 100)
    mask[10:30, 10:30] = DUST
    mask[30:50, 30:50] = DUST  # meets the first at a corner only
    assert measure_classes(mask, FULL_CLASSES)['Dust'].regions == 1


def test_ignored_and_clean_pixels_are_not_measured():
    mask = np.full((200, 200), IGNORE_INDEX, np.uint8)
    mask[50:150, 50:150] = 0  # clean artwork
    mask[60:80, 60:80] = STAINING
    measures = measure_classes(mask, FULL_CLASSES, DPI_600)
    assert list(measures) == ['Staining']
    assert measures['Staining'].pixels == 400
    assert measure_classes(np.full((50, 50), IGNORE_INDEX, np.uint8), FULL_CLASSES) == {}


def test_binary_class_set_measures_damage_only():
    mask = blank(100, 100)
    mask[10:20, 10:40] = 1
    measures = measure_classes(mask, BINARY_CLASSES, DPI_600)
    assert list(measures) == ['Damage']
    assert measures['Damage'].pixels == 300
    assert measures['Damage'].length_px is None


def test_without_resolution_areas_and_lengths_are_none_and_the_record_says_so():
    mask = line_at(45, 300, 5)
    mask[10:50, 10:50] = STAINING
    record = measurement_record(mask, FULL_CLASSES)
    assert record['scale']['known'] is False
    assert 'scale unknown' in record['scale']['note']
    assert record['scale']['px_per_mm'] is None
    scratch, staining = record['classes']['Scratch'], record['classes']['Staining']
    assert scratch['area_mm2'] is None and scratch['length_mm'] is None
    assert scratch['length_px'] == pytest.approx(300, rel=0.03)
    assert staining['area_mm2'] is None and staining['largest_region_mm2'] is None
    assert 'length_px' not in staining  # lengths only for thin classes
    json.dumps(record)


def test_record_with_a_resolution():
    mask = blank(300, 300)
    mask[0:120, 0:60] = STAINING
    resolution = Resolution(12.0, 12.0, 'PNG pHYs', 'a note')
    record = measurement_record(mask, FULL_CLASSES, resolution, min_region_px=4)
    assert record['scale'] == dict(known=True, px_per_mm=[12.0, 12.0],
                                   dpi=[pytest.approx(304.8), pytest.approx(304.8)],
                                   source='PNG pHYs', note='a note')
    assert record['min_region_px'] == 4
    assert record['classes']['Staining'] == dict(
        class_id=STAINING, pixels=7200, area_mm2=50.0, area_cm2=0.5, regions=1,
        largest_region_px=7200, largest_region_mm2=50.0)
    json.dumps(record)


def test_as_record_of_a_thin_class():
    measure = ClassMeasure('Hair', 5, 10, None, None, 1, 10, None, 12.3456789, None)
    assert measure.as_record()['length_px'] == 12.3457
    assert measure.as_record()['length_mm'] is None


@pytest.mark.parametrize('mask, message', [
    (np.zeros((10, 10), np.int64), 'uint8'),
    (np.zeros((10, 10, 3), np.uint8), '2-D'),
    (np.full((10, 10), 20, np.uint8), r'class ids \[20\]'),
])
def test_bad_masks_are_refused(mask, message):
    with pytest.raises(ValueError, match=message):
        measure_classes(mask, FULL_CLASSES)


def test_min_region_px_must_be_positive():
    with pytest.raises(ValueError, match='min_region_px'):
        measure_classes(blank(10, 10), FULL_CLASSES, min_region_px=0)
