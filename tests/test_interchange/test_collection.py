"""Collections of masks (``CollectionExport``) and the importer reading them back.

Three masks, one named with a subfolder as ``tools/infer.py`` names images found in
subfolders, are exported into one COCO file, one CVAT zip and one Label Studio task list
(plus GeoJSON and IIIF per image); the importer (``import_annotations``, the function
``tools/dataset_converters/from_annotations.py`` runs) must read each collection back to
the three masks exactly, and the command line must find the images by the names' folders.
"""
import importlib.util
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest

from artseg_mm.datasets.artefact_classes import FULL_CLASSES, FULL_PALETTE
from artseg_mm.interchange import (FORMATS, CollectionExport, coco_categories,
                                   mask_from_iiif, rasterize_geojson)
from artseg_mm.interchange.collection import LABELSTUDIO_CONFIG_FILE
from artseg_mm.interchange.imports import (ImageFolder, import_annotations, name_tails,
                                           read_annotations)
from conftest import REPO

TOOL = REPO / 'tools' / 'dataset_converters' / 'from_annotations.py'
# a model that picked some ARTeFACT classes: on disk as their full ids
CLASSES = ['Clean', 'Material loss', 'Cracks', 'Dust']
PALETTE = [FULL_PALETTE[FULL_CLASSES.index(c)] for c in CLASSES]
TO_DISK = np.array([FULL_CLASSES.index(c) for c in CLASSES], np.uint8)
SHAPES = {'scan_a': (10, 12), 'box_2/page': (9, 7), 'scan_c': (12, 10)}  # (height, width)
IMPORTED = {'cvat': 'cvat', 'coco': 'coco', 'labelstudio': 'label-studio'}


def known_mask(seed: int, shape) -> np.ndarray:
    """Every class scattered, a block on the top-left border and not-segmented pixels."""
    mask = np.random.default_rng(seed).integers(0, len(CLASSES), shape).astype(np.uint8)
    mask[0:3, 0:4] = 1
    mask[-1, -3:] = 255
    return mask


def expected(mask: np.ndarray) -> np.ndarray:
    """What an export gives back: not-segmented pixels are not exported, so read as Clean."""
    return np.where(mask == 255, 0, mask).astype(np.uint8)


@pytest.fixture
def masks():
    return {name: known_mask(k, shape) for k, (name, shape) in enumerate(SHAPES.items())}


@pytest.fixture
def images(tmp_path, masks) -> Path:
    """The images the masks are of, in the same folders as their names say."""
    folder = tmp_path / 'images'
    rng = np.random.default_rng(0)
    for name, mask in masks.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, mask.shape + (3,)).astype(np.uint8)
        assert cv2.imwrite(str(folder / f'{name}.png'), pixels)
    return folder


def export_collection(out: Path, masks: dict, formats=FORMATS) -> dict:
    """The masks exported as a collection; returns what finish() returned."""
    collection = CollectionExport(out, CLASSES, PALETTE, formats, model_version='m1',
                                  iiif_canvas='https://example.org/iiif/{name}/canvas')
    for name, mask in masks.items():
        written = collection.add(mask, name, image_path=f'{name}.png', px_per_mm=(2, 2),
                                 score=0.5)
        assert written == {fmt: (f'{fmt}/{name}.geojson' if fmt == 'geojson' else
                                 f'{fmt}/{name}.iiif.json' if fmt == 'iiif' else
                                 {'coco': 'annotations.coco.json',
                                  'cvat': 'annotations.cvat.zip',
                                  'labelstudio': 'tasks.labelstudio.json'}[fmt])
                           for fmt in formats}
    files = collection.finish()
    assert collection.finish() == files  # a second call is a no-op
    with pytest.raises(RuntimeError, match='is finished'):
        collection.add(masks['scan_a'], 'late')
    return files


def data_root_masks(root: Path) -> dict:
    """sample id (with its folders) -> mask on disk, of both splits."""
    found = {}
    for split in ('train', 'val'):
        for path in sorted((root / 'ann_dir' / split).rglob('*.png')):
            sample_id = path.relative_to(root / 'ann_dir' / split).with_suffix('').as_posix()
            assert (root / 'img_dir' / split / f'{sample_id}.png').is_file()
            found[sample_id] = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return found


def load_tool():
    """tools/dataset_converters/from_annotations.py as a module, to call main()."""
    spec = importlib.util.spec_from_file_location('from_annotations', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the collection files
def test_collection_layout(tmp_path, masks):
    out = tmp_path / 'exports'
    files = export_collection(out, masks)
    assert files == {'geojson': 'geojson', 'coco': 'annotations.coco.json',
                     'cvat': 'annotations.cvat.zip', 'labelstudio': 'tasks.labelstudio.json',
                     'labelstudio_config': LABELSTUDIO_CONFIG_FILE, 'iiif': 'iiif'}
    assert all((out / path).exists() for path in files.values())
    assert not list(out.rglob('*.partial'))

    coco = json.loads((out / files['coco']).read_text())
    assert [image['id'] for image in coco['images']] == [1, 2, 3]
    assert [image['file_name'] for image in coco['images']] == [f'{n}.png' for n in masks]
    assert [(image['height'], image['width']) for image in coco['images']] == list(
        SHAPES.values())
    ids = [annotation['id'] for annotation in coco['annotations']]
    assert ids == list(range(1, len(ids) + 1))
    assert {annotation['image_id'] for annotation in coco['annotations']} == {1, 2, 3}
    assert coco['categories'] == coco_categories(CLASSES)
    assert coco['info']['version'] == 'm1'

    with zipfile.ZipFile(out / files['cvat']) as archive:
        members = archive.namelist()
        subset = archive.read('ImageSets/Segmentation/default.txt').decode()
    assert members.count('labelmap.txt') == 1
    assert sorted(members) == sorted(
        ['labelmap.txt', 'ImageSets/Segmentation/default.txt']
        + [f'{kind}/{name}.png' for name in masks
           for kind in ('SegmentationClass', 'SegmentationObject')])
    assert subset.splitlines() == list(masks)

    tasks = json.loads((out / files['labelstudio']).read_text())
    assert [task['data']['image'] for task in tasks] == [f'{name}.png' for name in masks]
    assert all(task['predictions'][0]['model_version'] == 'm1' for task in tasks)
    assert all(task['predictions'][0]['score'] == 0.5 for task in tasks)
    config = ElementTree.fromstring((out / LABELSTUDIO_CONFIG_FILE).read_text())
    (brush_tag,) = config.iter('BrushLabels')
    assert [label.get('value') for label in brush_tag.iter('Label')] == CLASSES[1:]

    for name, mask in masks.items():  # GeoJSON and IIIF per image, folders mirrored
        geojson = json.loads((out / 'geojson' / f'{name}.geojson').read_text())
        np.testing.assert_array_equal(rasterize_geojson(geojson, mask.shape, CLASSES),
                                      expected(mask), err_msg=name)
        assert {f['properties']['image'] for f in geojson['features']} == {name}
        iiif = json.loads((out / 'iiif' / f'{name}.iiif.json').read_text())
        np.testing.assert_array_equal(mask_from_iiif(iiif, mask.shape, CLASSES),
                                      expected(mask), err_msg=name)
        assert {a['target']['source'] for a in iiif['items']} == {
            f'https://example.org/iiif/{name}/canvas'}


@pytest.mark.parametrize('fmt', ['cvat', 'coco', 'labelstudio'])
def test_the_importer_reads_each_collection_back(tmp_path, masks, images, fmt):
    out = tmp_path / 'exports'
    files = export_collection(out, masks, [fmt])
    root = tmp_path / 'root'
    import_annotations(IMPORTED[fmt], out / files[fmt], images, root, classes=CLASSES,
                       use_predictions=True, progress=False)
    found = data_root_masks(root)
    assert sorted(found) == sorted(masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(found[name], TO_DISK[expected(mask)], err_msg=name)
    read = dict(read_annotations(IMPORTED[fmt], out / files[fmt], images, CLASSES,
                                 use_predictions=True))
    assert sorted(read) == sorted(f'{name}.png' for name in masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(read[f'{name}.png'], expected(mask), err_msg=name)


def test_names_without_image_paths_find_their_images(tmp_path, masks, images):
    """Without image_path, COCO and Label Studio carry the name (no suffix): the one
    image of that path with an image suffix is taken."""
    out = tmp_path / 'exports'
    with CollectionExport(out, CLASSES, None, ['coco', 'labelstudio']) as collection:
        for name, mask in masks.items():
            collection.add(mask, name)
    coco = json.loads((out / 'annotations.coco.json').read_text())
    assert [image['file_name'] for image in coco['images']] == list(masks)
    for fmt, file in (('coco', 'annotations.coco.json'),
                      ('label-studio', 'tasks.labelstudio.json')):
        read = dict(read_annotations(fmt, out / file, images, CLASSES, use_predictions=True))
        for name, mask in masks.items():
            np.testing.assert_array_equal(read[f'{name}.png'], expected(mask), err_msg=name)


def test_command_line_imports_a_collection_zip_with_subfolders(tmp_path, masks, images):
    out = tmp_path / 'exports'
    files = export_collection(out, masks, ['cvat'])
    root = tmp_path / 'root'
    assert load_tool().main(['cvat', str(out / files['cvat']), '--images', str(images),
                             '--out', str(root), '--classes', json.dumps(CLASSES),
                             '--val', 'box_2/page', '--no-progress']) == 0
    mask_file = root / 'ann_dir' / 'val' / 'box_2' / 'page.png'
    np.testing.assert_array_equal(cv2.imread(str(mask_file), cv2.IMREAD_UNCHANGED),
                                  TO_DISK[expected(masks['box_2/page'])])
    assert (root / 'img_dir' / 'val' / 'box_2' / 'page.png').read_bytes() == \
        (images / 'box_2' / 'page.png').read_bytes()
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['image_files'] == {name: f'{name}.png' for name in masks}
    assert (root / 'meta' / 'val.csv').read_text().splitlines()[1].startswith('box_2/page,')
    # the dataset reads the nested sample as it reads the others
    import artseg_mm  # noqa: F401  registers ARTeFACTDataset
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(dict(
        type='ARTeFACTDataset', label_mode='full', data_root=str(root),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='mmseg.LoadAnnotations')]))
    (item,) = [dataset[k] for k in range(len(dataset))]
    assert item['sample_id'] == 'box_2/page'
    np.testing.assert_array_equal(item['gt_seg_map'], TO_DISK[expected(masks['box_2/page'])])


# ------------------------------------------------------------------ names and images
def test_a_data_root_inside_the_images_folder_is_not_read_as_images(tmp_path, masks,
                                                                   images):
    out = tmp_path / 'exports'
    files = export_collection(out, masks, ['coco'])
    for force in (False, True):  # the second run finds the first one's root in --images
        import_annotations('coco', out / files['coco'], images, images / 'root',
                           classes=CLASSES, force=force, progress=False)
    assert sorted(data_root_masks(images / 'root')) == sorted(masks)


def test_image_names_map_to_paths_under_the_images_folder(tmp_path):
    folder = tmp_path / 'images'
    for name in ('page.png', 'box_1/page.png', 'box_2/page.tif', 'box_2/other.jpg',
                 'box_2/other.png', '.hidden/x.png', 'box_3/notes.txt'):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b'')
    images = ImageFolder(folder)
    assert sorted(images.files) == ['box_1/page.png', 'box_2/other.jpg', 'box_2/other.png',
                                    'box_2/page.tif', 'page.png']
    assert name_tails('/data/box_2/page.png') == ['data/box_2/page.png', 'box_2/page.png',
                                                  'page.png']
    assert images.find(['box_1/page.png']) == 'box_1/page.png'
    assert images.find(['box_2/page']) == 'box_2/page.tif'  # CVAT: no suffix
    assert images.find(['box_2/page.jpg']) == 'box_2/page.tif'  # converted since
    assert images.find(['/home/me/scans/box_1/page.png']) == 'box_1/page.png'
    assert images.find(['tool_folder/page.png']) == 'page.png'  # the tool's own folders
    assert images.find(['box_2/other']) is None  # two files of that name: not guessed
    assert images.find(['box_2/other.jpg']) == 'box_2/other.jpg'
    assert images.find(['box_9/missing.png']) is None  # never a file deeper than it says
    assert ImageFolder(folder / 'box_1').find(['page']) == 'page.png'


# ---------------------------------------------------------------------------- refusals
def test_unknown_formats_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown export formats \['shapefile'\]; "
                                         r"allowed: \['geojson', 'coco'"):
        CollectionExport(tmp_path / 'out', CLASSES, None, ['coco', 'shapefile'])
    with pytest.raises(ValueError, match='no export format asked'):
        CollectionExport(tmp_path / 'out', CLASSES, None, [])
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match='colon'):
        CollectionExport(tmp_path / 'out', ['Clean', 'a:b'], None, 'cvat')


@pytest.mark.parametrize('name', ['', '/abs/page', 'box/../page', 'box//page', './page',
                                  'box\\page', 'page\n', 'box/'])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    collection = CollectionExport(tmp_path, CLASSES, None, ['geojson', 'cvat'])
    with pytest.raises(ValueError, match='image name'):
        collection.add(np.zeros((2, 2), np.uint8), name)
    collection.abort()
    assert not list(tmp_path.rglob('*.partial'))


def test_a_refused_image_leaves_no_trace(tmp_path, masks):
    out = tmp_path / 'exports'
    collection = CollectionExport(out, CLASSES, None, ['coco', 'cvat', 'geojson'])
    collection.add(masks['scan_a'], 'scan_a')
    with pytest.raises(ValueError, match='is in the collection already'):
        collection.add(masks['scan_c'], 'scan_a')
    with pytest.raises(ValueError, match=r'values \[7\]'):
        collection.add(np.full((3, 3), 7, np.uint8), 'bad')
    with pytest.raises(ValueError, match='px_per_mm'):
        collection.add(masks['scan_c'], 'scan_c', px_per_mm=(0, 1))
    collection.finish()
    coco = json.loads((out / 'annotations.coco.json').read_text())
    assert [image['file_name'] for image in coco['images']] == ['scan_a']
    with zipfile.ZipFile(out / 'annotations.cvat.zip') as archive:
        assert archive.read('ImageSets/Segmentation/default.txt').decode() == 'scan_a\n'
    assert sorted(p.name for p in (out / 'geojson').iterdir()) == ['scan_a.geojson']


def test_an_empty_collection_and_an_aborted_one(tmp_path):
    files = CollectionExport(tmp_path / 'empty', CLASSES, None, FORMATS).finish()
    coco = json.loads((tmp_path / 'empty' / files['coco']).read_text())
    assert coco['images'] == [] and coco['annotations'] == []
    assert json.loads((tmp_path / 'empty' / files['labelstudio']).read_text()) == []
    with zipfile.ZipFile(tmp_path / 'empty' / files['cvat']) as archive:
        assert archive.read('ImageSets/Segmentation/default.txt') == b''
    out = tmp_path / 'aborted'
    with pytest.raises(KeyError):
        with CollectionExport(out, CLASSES, None, FORMATS) as collection:
            collection.add(np.ones((2, 2), np.uint8), 'box/scan')
            raise KeyError('interrupted')
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob('*') if p.is_file()) == [
        'geojson/box/scan.geojson', 'iiif/box/scan.iiif.json']
    with pytest.raises(RuntimeError, match='was aborted'):
        collection.finish()
