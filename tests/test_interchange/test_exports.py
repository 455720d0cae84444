"""Round trips of predicted masks through every interchange format.

Each export is read back and must give the mask back exactly: COCO, CVAT and Label
Studio files through the importer (``artseg_mm.interchange.imports``, with a blank
image of the mask's size, so they must pass its checks of labels, sizes and overlaps),
GeoJSON and IIIF with rasterio (pixel-edge polygons rasterised by pixel centres are
exact too). Clean (0) and not-segmented (255) pixels are never exported, so both read
back as 0.
"""
import json
import zipfile
from xml.etree import ElementTree

import numpy as np
import pytest
import shapely.geometry
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from skimage.measure import label as skimage_label

from artseg_mm.datasets.artefact_classes import (BINARY_CLASSES, BINARY_PALETTE,
                                                 FULL_CLASSES, FULL_PALETTE)
from artseg_mm.datasets.image_resolution import Resolution
from artseg_mm.interchange import (FORMATS, class_colours, export_masks, find_regions,
                                   labelstudio_config, mask_from_iiif, parse_svg_path,
                                   rasterize_geojson, svg_path, to_coco, to_geojson, to_iiif,
                                   to_labelstudio, write_cvat_zip)
from artseg_mm.interchange.imports import read_annotations, read_cvat_labelmap

CLASSES = list(FULL_CLASSES)
# the importer's name of each export format it reads
IMPORT_FORMATS = {'coco': 'coco', 'cvat': 'cvat', 'labelstudio': 'label-studio'}


def imported(fmt: str, path, shape, tmp_path, classes=CLASSES) -> np.ndarray:
    """The mask the importer reads from the export ``path`` in ``fmt`` (an export format),
    its image a blank ``scan.png`` of ``shape``; Label Studio's predictions are taken, as
    an uncorrected export holds only those."""
    images = tmp_path / f'images_{shape[0]}x{shape[1]}'
    if not images.is_dir():
        images.mkdir()
        Image.fromarray(np.zeros(shape, np.uint8)).save(images / 'scan.png')
    ((name, mask),) = read_annotations(IMPORT_FORMATS[fmt], path, images, classes,
                                       use_predictions=fmt == 'labelstudio')
    assert name == 'scan.png'
    return mask


def written(document, tmp_path, file_name: str):
    """``document`` as a JSON file, for the importer."""
    path = tmp_path / file_name
    path.write_text(json.dumps(document))
    return path


def _tricky_mask() -> np.ndarray:
    """Every hard case at once: holes, rings of one class around another and
    around background, classes touching, regions on the border, single pixels,
    pixels touching only at corners, and not-segmented pixels."""
    mask = np.zeros((24, 26), dtype=np.uint8)
    mask[1:6, 1:6] = 3            # a ring of Dust around background ...
    mask[2:5, 2:5] = 0
    mask[3, 3] = 3                # ... holding an island of Dust (its own region)
    mask[18:24, 0:5] = 1          # Material loss on the border, a ring around ...
    mask[19:22, 1:4] = 2          # ... Peel
    mask[18:24, 5:7] = 2          # Peel touching the Material loss
    mask[0, 25] = 5               # single pixels in corners
    mask[23, 25] = 5
    mask[22, 24] = 5              # touching the corner pixel diagonally: one region
    mask[0:4, 10:16] = 255        # not segmented, next to damage
    mask[4, 10:16] = 4
    mask[8, 9] = 4                # a diagonal scratch: one 8-connected region
    mask[9, 10] = 4
    mask[10, 11] = 4
    mask[8:13, 14:19] = 6         # a ring whose hole meets the outside at a corner
    mask[9:12, 15:18] = 0
    mask[8, 18] = 0
    mask[14:19, 14:19] = 7        # a ring whose island touches it at a corner
    mask[15:18, 15:18] = 0
    mask[16, 16] = 7
    mask[15, 15] = 7
    mask[11:18, 20:26] = 9        # a ring of Cracks on the border around ...
    mask[12:17, 21:25] = 8        # ... a ring of Writing around ...
    mask[13:16, 22:24] = 0        # ... background
    return mask


def _random_mask() -> np.ndarray:
    """Speckled noise: many small regions, holes and corner contacts."""
    rng = np.random.default_rng(7)
    mask = rng.choice([0, 0, 1, 2, 3, 15, 255], size=(30, 37)).astype(np.uint8)
    return mask


MASKS = {'tricky': _tricky_mask, 'random': _random_mask}


def _expected(mask: np.ndarray) -> np.ndarray:
    """What every format gives back: not-segmented pixels read as unannotated."""
    return np.where(mask == 255, 0, mask).astype(np.uint8)


def _region_count(mask: np.ndarray) -> int:
    """The number of 8-connected regions of the exported classes, counted with a
    different library than the exporter's."""
    return sum(int(skimage_label(mask == class_id, connectivity=2).max())
               for class_id in np.unique(mask) if class_id not in (0, 255))


@pytest.fixture(params=sorted(MASKS))
def mask(request) -> np.ndarray:
    return MASKS[request.param]()


# ---------------------------------------------------------------- GeoJSON

def test_geojson_round_trip_is_exact(mask):
    doc = json.loads(json.dumps(to_geojson(mask, CLASSES, FULL_PALETTE, name='scan')))
    assert doc['type'] == 'FeatureCollection'
    assert len(doc['features']) == _region_count(mask)
    np.testing.assert_array_equal(rasterize_geojson(doc, mask.shape, CLASSES),
                                  _expected(mask))


def test_geojson_geometries_are_valid_pixel_edge_polygons(mask):
    doc = to_geojson(mask, CLASSES, name='scan')
    for feature in doc['features']:
        geometry = shapely.geometry.shape(feature['geometry'])
        assert geometry.is_valid, feature
        assert geometry.area == feature['properties']['area_px']
        assert feature['geometry']['type'] in ('Polygon', 'MultiPolygon')


def test_geojson_holes_are_interior_rings():
    mask = np.zeros((7, 7), dtype=np.uint8)
    mask[1:6, 1:6] = 1
    mask[2:5, 2:5] = 2
    mask[3, 3] = 0
    doc = to_geojson(mask, CLASSES, name='scan')
    outer, inner = doc['features']
    assert outer['properties']['class'] == 'Material loss'
    assert len(outer['geometry']['coordinates']) == 2  # exterior and one hole
    assert shapely.geometry.shape(outer['geometry']).area == 16
    assert len(inner['geometry']['coordinates']) == 2
    assert shapely.geometry.shape(inner['geometry']).area == 8


def test_geojson_corner_contacts_give_one_multipolygon_region():
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = 1
    (feature,) = to_geojson(mask, CLASSES, name='scan')['features']
    assert feature['geometry']['type'] == 'MultiPolygon'
    assert len(feature['geometry']['coordinates']) == 3
    assert feature['properties']['area_px'] == 3


def test_geojson_areas_in_pixels_and_square_millimetres():
    mask = _tricky_mask()
    plain = to_geojson(mask, CLASSES, name='scan')
    scaled = to_geojson(mask, CLASSES, name='scan', px_per_mm=(2.0, 4.0))
    from_resolution = to_geojson(mask, CLASSES, name='scan',
                                 px_per_mm=Resolution(2.0, 4.0, 'test'))
    per_class = {}
    for feature in plain['features']:
        properties = feature['properties']
        assert properties['area_mm2'] is None
        assert properties['image'] == 'scan'
        assert properties['class'] == CLASSES[properties['class_id']]
        per_class[properties['class_id']] = (per_class.get(properties['class_id'], 0)
                                             + properties['area_px'])
    assert per_class == {class_id: int((mask == class_id).sum())
                         for class_id in np.unique(mask) if class_id not in (0, 255)}
    for feature, same in zip(scaled['features'], from_resolution['features']):
        area_px = feature['properties']['area_px']
        assert feature['properties']['area_mm2'] == pytest.approx(area_px / 8.0)
        assert same['properties']['area_mm2'] == feature['properties']['area_mm2']


def test_geojson_carries_qupath_classification_colours():
    mask = np.zeros((3, 3), dtype=np.uint8)
    mask[1, 1] = 1
    (feature,) = to_geojson(mask, CLASSES, FULL_PALETTE, name='scan')['features']
    assert feature['properties']['objectType'] == 'annotation'
    assert feature['properties']['classification'] == {'name': 'Material loss',
                                                       'color': FULL_PALETTE[1]}


@pytest.mark.parametrize('scale', [(0, 1), (1, float('nan')), (-2, 2), 'x', (3,)])
def test_geojson_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match='px_per_mm'):
        to_geojson(_tricky_mask(), CLASSES, name='scan', px_per_mm=scale)


# ---------------------------------------------------------------- COCO

def test_coco_round_trip_is_exact(mask, tmp_path):
    path = written(to_coco(mask, CLASSES, name='scan'), tmp_path, 'scan.coco.json')
    np.testing.assert_array_equal(imported('coco', path, mask.shape, tmp_path),
                                  _expected(mask))


def test_coco_has_one_annotation_per_connected_region(mask):
    doc = to_coco(mask, CLASSES, name='scan')
    assert len(doc['annotations']) == _region_count(mask)
    assert len({annotation['id'] for annotation in doc['annotations']}) == len(
        doc['annotations'])


def test_coco_rle_matches_pycocotools_own_encoding(mask):
    """The region RLEs built from runs equal pycocotools' encoding of the region's
    full mask, byte for byte, with its area and box."""
    doc = to_coco(mask, CLASSES, name='scan')
    labels = find_regions(mask, CLASSES, outlines=False)
    for annotation, region in zip(doc['annotations'], labels):
        full = np.zeros(mask.shape, dtype=np.uint8)
        full[region.rows, region.cols] = 1
        reference = coco_mask.encode(np.asfortranarray(full))
        assert annotation['segmentation']['counts'] == reference['counts'].decode('ascii')
        assert annotation['segmentation']['size'] == [mask.shape[0], mask.shape[1]]
        assert annotation['area'] == int(coco_mask.area(reference))
        assert annotation['bbox'] == coco_mask.toBbox(reference).astype(int).tolist()
        assert annotation['iscrowd'] == 0
        assert annotation['category_id'] == int(mask[region.rows[0], region.cols[0]])


@pytest.mark.filterwarnings(  # pycocotools' decoder under numpy 2; the masks are right
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_coco_document_loads_in_the_coco_api(tmp_path):
    mask = _tricky_mask()
    doc = to_coco(mask, CLASSES, name='scan', image_path='/scans/scan.tif',
                  model_version='m1')
    assert doc['images'] == [{'id': 1, 'file_name': 'scan.tif', 'width': 26, 'height': 24}]
    assert doc['info']['version'] == 'm1'
    assert [c['id'] for c in doc['categories']] == list(range(1, len(CLASSES)))
    assert [c['name'] for c in doc['categories']] == CLASSES[1:]
    path = tmp_path / 'scan.coco.json'
    path.write_text(json.dumps(doc))
    api = COCO(str(path))
    rebuilt = np.zeros(mask.shape, dtype=np.uint8)
    for annotation in api.loadAnns(api.getAnnIds(imgIds=[1])):
        rebuilt[api.annToMask(annotation).astype(bool)] = annotation['category_id']
    np.testing.assert_array_equal(rebuilt, _expected(mask))


# ---------------------------------------------------------------- CVAT

def test_cvat_zip_layout_and_round_trip(tmp_path, mask):
    path = write_cvat_zip(mask, CLASSES, FULL_PALETTE, path=tmp_path / 'scan.cvat.zip',
                          name='scan')
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([
            'labelmap.txt', 'SegmentationClass/scan.png', 'SegmentationObject/scan.png',
            'ImageSets/Segmentation/default.txt'])
        assert archive.read('ImageSets/Segmentation/default.txt').decode() == 'scan\n'
        lines = archive.read('labelmap.txt').decode().splitlines()
    assert lines[0] == '# label:color_rgb:parts:actions'
    assert lines[1] == 'background:0,0,0::'
    assert lines[2] == 'Material loss:28,230,255::'
    assert len(lines) == 1 + len(CLASSES)
    # line i names class i: a colour's line is its class id
    assert list(read_cvat_labelmap(path).values()) == ['background'] + CLASSES[1:]
    np.testing.assert_array_equal(imported('cvat', path, mask.shape, tmp_path),
                                  _expected(mask))


def test_cvat_class_png_uses_labelmap_colours(tmp_path):
    mask = _tricky_mask()
    path = write_cvat_zip(mask, CLASSES, FULL_PALETTE, path=tmp_path / 'x.zip', name='scan')
    labelmap = read_cvat_labelmap(path)  # colour -> label, in the file's (class id) order
    with zipfile.ZipFile(path) as archive, \
            Image.open(archive.open('SegmentationClass/scan.png')) as image:
        assert image.mode == 'RGB'
        rgb = np.asarray(image)
    expected = _expected(mask)
    for class_id, colour in enumerate(labelmap):
        assert (rgb[expected == class_id] == colour).all()


def test_cvat_object_png_gives_each_region_its_own_colour(tmp_path, mask):
    path = write_cvat_zip(mask, CLASSES, path=tmp_path / 'x.zip', name='scan')
    with zipfile.ZipFile(path) as archive, \
            Image.open(archive.open('SegmentationObject/scan.png')) as image:
        rgb = np.asarray(image.convert('RGB')).astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    expected = _expected(mask)
    assert (packed[expected == 0] == 0).all()
    colours = np.unique(packed[expected != 0])
    assert len(colours) == _region_count(mask)
    for colour in colours:
        pixels = packed == colour
        assert len(np.unique(expected[pixels])) == 1  # one class per object
        assert skimage_label(pixels, connectivity=2).max() == 1  # one region per colour


@pytest.mark.parametrize('palette', [
    [[0, 0, 0], [0, 0, 0], [9, 9, 9], [9, 9, 9], [1, 2, 3]],  # black and repeated
    None,
])
def test_cvat_labelmap_colours_are_unique(tmp_path, palette):
    classes = CLASSES[:5]
    mask = np.arange(5, dtype=np.uint8).repeat(3).reshape(3, 5)
    path = write_cvat_zip(mask, classes, palette, path=tmp_path / 'x.zip', name='scan')
    colours = list(read_cvat_labelmap(path))
    assert colours[0] == (0, 0, 0)
    assert len(set(colours)) == len(colours) == 5
    if palette is not None:
        assert colours[2] == (9, 9, 9) and colours[4] == (1, 2, 3)  # kept where unique
    np.testing.assert_array_equal(imported('cvat', path, mask.shape, tmp_path, classes), mask)


def test_class_colours_keep_a_good_palette():
    assert class_colours(FULL_CLASSES, FULL_PALETTE) == [tuple(c) for c in FULL_PALETTE]
    assert class_colours(BINARY_CLASSES, BINARY_PALETTE) == [(0, 0, 0), (255, 64, 64)]


def test_cvat_refuses_a_class_name_with_a_colon(tmp_path):
    with pytest.raises(ValueError, match='colon'):
        write_cvat_zip(np.zeros((2, 2), np.uint8), ['Clean', 'a:b'],
                       path=tmp_path / 'x.zip', name='scan')


# ---------------------------------------------------------------- Label Studio

def test_labelstudio_round_trip_is_exact(mask, tmp_path):
    path = written(to_labelstudio(mask, CLASSES, name='scan'), tmp_path, 'scan.ls.json')
    np.testing.assert_array_equal(imported('labelstudio', path, mask.shape, tmp_path),
                                  _expected(mask))


def test_labelstudio_task_structure():
    mask = _tricky_mask()
    (task,) = to_labelstudio(mask, CLASSES, name='scan', image_path='/data/upload/scan.jpg',
                             model_version='m1', score=0.75)
    assert task['data'] == {'image': '/data/upload/scan.jpg'}
    (prediction,) = task['predictions']
    assert prediction['model_version'] == 'm1'
    assert prediction['score'] == 0.75
    present = [c for c in np.unique(mask) if c not in (0, 255)]
    assert [r['value']['brushlabels'] for r in prediction['result']] == [
        [CLASSES[c]] for c in present]
    for result in prediction['result']:
        assert result['from_name'] == 'tag' and result['to_name'] == 'image'
        assert result['type'] == 'brushlabels' and result['value']['format'] == 'rle'
        assert (result['original_width'], result['original_height']) == (26, 24)
        assert result['image_rotation'] == 0
    (plain,) = to_labelstudio(mask, CLASSES, name='scan')
    assert 'score' not in plain['predictions'][0]
    assert plain['data'] == {'image': 'scan'}


def test_labelstudio_config_matches_the_predictions():
    config = ElementTree.fromstring(labelstudio_config(BINARY_CLASSES, BINARY_PALETTE))
    (brush_tag,) = config.iter('BrushLabels')
    assert brush_tag.get('name') == 'tag' and brush_tag.get('toName') == 'image'
    assert [label.get('value') for label in brush_tag.iter('Label')] == ['Damage']
    assert next(config.iter('Image')).get('name') == 'image'


# ---------------------------------------------------------------- IIIF

def test_iiif_round_trip_is_exact(mask):
    doc = json.loads(json.dumps(to_iiif(mask, CLASSES, name='scan')))
    assert len(doc['items']) == _region_count(mask)
    np.testing.assert_array_equal(mask_from_iiif(doc, mask.shape, CLASSES), _expected(mask))


def test_iiif_annotation_page_structure_and_canvas_template():
    mask = _tricky_mask()
    doc = to_iiif(mask, CLASSES, name='scan',
                  canvas='https://example.org/iiif/{name}/canvas/1')
    assert doc['@context'] == 'http://www.w3.org/ns/anno.jsonld'
    assert doc['type'] == 'AnnotationPage'
    for annotation in doc['items']:
        assert annotation['type'] == 'Annotation'
        assert annotation['motivation'] == 'tagging'
        assert annotation['body']['type'] == 'TextualBody'
        assert annotation['body']['value'] in CLASSES[1:]
        assert annotation['target']['source'] == 'https://example.org/iiif/scan/canvas/1'
        selector = annotation['target']['selector']
        assert selector['type'] == 'SvgSelector'
        svg = ElementTree.fromstring(selector['value'])
        (path,) = svg.iter('{http://www.w3.org/2000/svg}path')
        assert path.get('fill-rule') == 'evenodd'
        assert path.get('d').startswith('M') and path.get('d').endswith('Z')
    default = to_iiif(mask, CLASSES, name='scan')
    assert {a['target']['source'] for a in default['items']} == {'scan'}


def test_svg_path_parses_back_to_the_rings():
    geometry = {'type': 'Polygon', 'coordinates': [[[0, 0], [3, 0], [3, 2], [0, 2], [0, 0]],
                                                   [[1, 1], [1, 2], [2, 2], [1, 1]]]}
    assert svg_path(geometry) == 'M0,0 L3,0 L3,2 L0,2 Z M1,1 L1,2 L2,2 Z'
    assert parse_svg_path(svg_path(geometry)) == [
        [(0, 0), (3, 0), (3, 2), (0, 2)], [(1, 1), (1, 2), (2, 2)]]
    with pytest.raises(ValueError, match='unsupported SVG path command'):
        parse_svg_path('M0,0 C1,1 2,2 3,3 Z')


# ---------------------------------------------------------------- dispatcher

def test_export_masks_writes_every_format(tmp_path):
    mask = _tricky_mask()
    paths = export_masks(mask, CLASSES, FULL_PALETTE, tmp_path / 'out', 'scan', FORMATS,
                         px_per_mm=(10, 10), model_version='m1', image_path='scan.jpg',
                         iiif_canvas='https://example.org/{name}/canvas')
    assert {fmt: path.name for fmt, path in paths.items()} == {
        'geojson': 'scan.geojson', 'coco': 'scan.coco.json', 'cvat': 'scan.cvat.zip',
        'labelstudio': 'scan.labelstudio.json', 'iiif': 'scan.iiif.json'}
    expected = _expected(mask)
    read = lambda fmt: json.loads(paths[fmt].read_text())  # noqa: E731
    np.testing.assert_array_equal(rasterize_geojson(read('geojson'), mask.shape, CLASSES),
                                  expected)
    for fmt in ('coco', 'cvat', 'labelstudio'):
        np.testing.assert_array_equal(imported(fmt, paths[fmt], mask.shape, tmp_path),
                                      expected, err_msg=fmt)
    iiif = read('iiif')
    assert iiif['items'][0]['target']['source'] == 'https://example.org/scan/canvas'
    np.testing.assert_array_equal(mask_from_iiif(iiif, mask.shape, CLASSES), expected)


def test_export_masks_refuses_an_unknown_format_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"unknown export formats \['shapefile'\].*'geojson'"):
        export_masks(_tricky_mask(), CLASSES, None, tmp_path / 'out', 'scan',
                     ['geojson', 'shapefile'])
    assert not (tmp_path / 'out').exists()


def test_export_masks_refuses_a_name_with_folders(tmp_path):
    with pytest.raises(ValueError, match='plain file name'):
        export_masks(_tricky_mask(), CLASSES, None, tmp_path, '../scan', ['coco'])


def test_an_all_clean_mask_exports_nothing(tmp_path):
    mask = np.zeros((5, 6), dtype=np.uint8)
    mask[0] = 255
    assert to_geojson(mask, CLASSES, name='scan')['features'] == []
    assert to_coco(mask, CLASSES, name='scan')['annotations'] == []
    assert to_iiif(mask, CLASSES, name='scan')['items'] == []
    tasks = to_labelstudio(mask, CLASSES, name='scan')
    assert tasks[0]['predictions'][0]['result'] == []
    zeros = np.zeros(mask.shape, np.uint8)
    # no result, so no size in the task: the image's size is used
    np.testing.assert_array_equal(
        imported('labelstudio', written(tasks, tmp_path, 'x.json'), mask.shape, tmp_path),
        zeros)
    path = write_cvat_zip(mask, CLASSES, path=tmp_path / 'x.zip', name='scan')
    np.testing.assert_array_equal(imported('cvat', path, mask.shape, tmp_path), zeros)
    coco = written(to_coco(mask, CLASSES, name='scan'), tmp_path, 'x.coco.json')
    np.testing.assert_array_equal(imported('coco', coco, mask.shape, tmp_path), zeros)


@pytest.mark.parametrize('bad, message', [
    (np.full((2, 2), 16, np.uint8), r'values \[16\]'),
    (np.full((2, 2), -1, np.int16), 'must lie in'),
    (np.zeros((2, 2, 3), np.uint8), 'H x W'),
    (np.zeros((2, 2), np.float32), 'integer'),
])
def test_a_bad_mask_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        to_coco(bad, CLASSES, name='scan')
