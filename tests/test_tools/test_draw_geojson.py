"""tools/misc/draw_geojson.py: a GeoJSON export drawn over its image."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artseg_mm.interchange.exports import to_geojson

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'misc' / 'draw_geojson.py'
CLASSES = ['Clean', 'Material loss', 'Dust']
WIDTH, HEIGHT, SCALE = 64, 48, 4


def load_tool():
    spec = importlib.util.spec_from_file_location('draw_geojson', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return load_tool()


def tiny_image() -> np.ndarray:
    """A grey gradient: every pixel a known, non-extreme colour."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.dstack([60 + xs, 60 + ys, np.full_like(xs, 90)]).astype(np.uint8)


def tiny_mask() -> np.ndarray:
    """A Material-loss square with a hole at the left, a Dust square at the bottom right."""
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[4:24, 4:24] = 1
    mask[10:18, 10:18] = 0
    mask[36:44, 50:60] = 2
    return mask


@pytest.fixture
def files(tmp_path):
    image_path = tmp_path / 'scan.png'
    Image.fromarray(tiny_image()).save(image_path)
    geojson_path = tmp_path / 'scan.geojson'
    geojson_path.write_text(json.dumps(to_geojson(tiny_mask(), CLASSES, name='scan')))
    return image_path, geojson_path, tmp_path


def output_block(drawing: np.ndarray, row: int, col: int) -> np.ndarray:
    """The SCALE x SCALE block of the drawing that image pixel (row, col) became."""
    return drawing[row * SCALE:(row + 1) * SCALE, col * SCALE:(col + 1) * SCALE, :3]


def test_draws_the_regions_and_leaves_the_rest(tool, files, capsys):
    image_path, geojson_path, folder = files
    out = folder / 'drawn' / 'scan.png'
    assert tool.main([str(image_path), str(geojson_path), '--out', str(out),
                      '--scale', str(SCALE)]) == 0
    assert 'wrote' in capsys.readouterr().out
    drawing = np.asarray(Image.open(out).convert('RGB'))
    assert drawing.shape == (HEIGHT * SCALE, WIDTH * SCALE, 3)
    image = tiny_image()
    # inside each region, away from the outline: filled, so changed
    for row, col in [(6, 6), (20, 20), (40, 55)]:
        assert np.abs(output_block(drawing, row, col).astype(int) - image[row, col]).max() > 20, \
            (row, col)
    # the hole and the far bottom-left corner (no region, no legend): untouched
    for row, col in [(14, 14), (44, 2), (30, 30)]:
        assert (output_block(drawing, row, col) == image[row, col]).all(), (row, col)


def test_holes_stay_open_whatever_the_ring_direction(tool, tmp_path):
    from shapely.geometry import Polygon
    square = [(4, 4), (40, 4), (40, 40), (4, 40), (4, 4)]
    hole = [(14, 14), (30, 14), (30, 30), (14, 30), (14, 14)]  # same direction as the exterior
    feature = tool.Feature('Dust', None, (255, 0, 0), Polygon(square, [hole]))
    image = tiny_image()
    out = tmp_path / 'hole.png'
    tool.draw(image, [feature], [], {'Dust': (255, 0, 0)}, str(out), 1.0, 'hole')
    drawing = np.asarray(Image.open(out).convert('RGB'))
    assert (drawing[22, 22] == image[22, 22]).all()  # in the hole
    assert drawing[9, 9, 0] > image[9, 9, 0] + 40    # in the ring: reddened


def test_classes_from_orders_and_checks(tool, files, capsys):
    image_path, geojson_path, folder = files
    out = folder / 'drawn.png'
    model = json.dumps(['Clean', 'Dust', 'Material loss'])  # Material loss is id 2 here
    assert tool.main([str(image_path), str(geojson_path), '--out', str(out),
                      '--classes-from', model]) == 1
    assert 'class id' in capsys.readouterr().err
    other = json.dumps(['Clean', 'Damage'])
    assert tool.main([str(image_path), str(geojson_path), '--out', str(out),
                      '--classes-from', other]) == 1
    assert 'not among the model classes' in capsys.readouterr().err
    assert tool.main([str(image_path), str(geojson_path), '--out', str(out),
                      '--classes-from', json.dumps(CLASSES + ['Peel'])]) == 0


def test_outlines_outside_the_image_are_refused(tool, files, capsys):
    image_path, geojson_path, folder = files
    small = folder / 'small.png'
    Image.fromarray(tiny_image()[:20, :20]).save(small)
    assert tool.main([str(small), str(geojson_path), '--out', str(folder / 'x.png')]) == 1
    assert 'outside the 20 x 20 image' in capsys.readouterr().err
    assert not (folder / 'x.png').exists()


@pytest.mark.parametrize('extra, message', [
    (['--scale', '0'], '--scale must be a positive number'),
    (['--out', 'drawing.jpg'], '--out must name a .png file'),
])
def test_usage_mistakes_are_one_line_and_exit_2(tool, files, capsys, extra, message):
    image_path, geojson_path, folder = files
    argv = [str(image_path), str(geojson_path), '--out', str(folder / 'a.png')] + extra
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1


def test_a_missing_file_is_a_usage_mistake(tool, files, capsys):
    image_path, _, folder = files
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(image_path), str(folder / 'nope.geojson'), '--out', str(folder / 'a.png')])
    assert exit_info.value.code == 2
    assert 'no such file' in capsys.readouterr().err


def test_points_are_refused_by_name(tool, files, capsys):
    image_path, _, folder = files
    points = folder / 'points.geojson'
    points.write_text(json.dumps({'type': 'FeatureCollection', 'features': [
        {'type': 'Feature', 'geometry': {'type': 'Point', 'coordinates': [3, 4]},
         'properties': {'class': 'Dust'}}]}))
    assert tool.main([str(image_path), str(points), '--out', str(folder / 'a.png')]) == 1
    assert "'Point'" in capsys.readouterr().err
