"""Importing corrected masks from CVAT, COCO and Label Studio as a data root.

Every export is built here from known masks (several classes, holes, regions on the image
border) with the format's own encoder (pycocotools, label-studio-converter), imported, and
the masks on disk compared pixel for pixel; polygons against the pixels whose centres they
contain (matplotlib's point-in-polygon test, independent of the rasterisers).
"""
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from label_studio_converter import brush
from matplotlib.path import Path as PolygonPath
from PIL import Image
from pycocotools import mask as coco_mask

from artseg_mm.datasets.artefact_classes import FULL_PALETTE
from artseg_mm.interchange import imports
from artseg_mm.interchange.imports import (AnnotationImportError, ImportUsageError,
                                           import_annotations, read_coco, read_cvat,
                                           read_label_studio, split_samples)
from conftest import PY, REPO, run_tool

TOOL = REPO / 'tools' / 'dataset_converters' / 'from_annotations.py'
# a model that picked some of the ARTeFACT classes: written as their full ids
CLASSES = ['Clean', 'Material loss', 'Cracks', 'Dust']
TO_DISK = np.array([0, 1, 9, 3], np.uint8)
W, H = 12, 10  # not square, so a transposed mask cannot pass
# as a conservator may spell them in a tool: case differs, Clean is CVAT's 'background'
LABELS = ['background', 'material LOSS', 'Cracks', 'dust']
COLOURS = [(0, 0, 0), (250, 50, 83), (36, 179, 83), (24, 100, 200)]
# integer corners, so no pixel centre lies on an edge: on the top-left border, a C shape
# on the right border (a notch), a triangle on the bottom-left border
POLYGONS = [(1, [(0, 0), (5, 0), (5, 4), (0, 4)]),
            (2, [(6, 1), (12, 1), (12, 8), (6, 8), (6, 6), (9, 6), (9, 3), (6, 3)]),
            (3, [(0, 5), (4, 10), (0, 10)])]


# ------------------------------------------------------------------------ helpers
def known_mask(seed: int) -> np.ndarray:
    """Every class, scattered (single pixels, holes in every region), a block with a hole
    on the top-left border and a class along the bottom border."""
    mask = np.random.default_rng(seed).integers(0, len(CLASSES), (H, W)).astype(np.uint8)
    mask[0:5, 0:6] = 1
    mask[2:3, 2:4] = 0  # the hole
    mask[-1, :] = 3
    return mask


def polygon_mask() -> np.ndarray:
    """The pixels whose centres POLYGONS contain, by class."""
    xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
    mask = np.zeros((H, W), np.uint8)
    for class_id, points in POLYGONS:
        mask[PolygonPath(points).contains_points(centres).reshape(H, W)] = class_id
    return mask


def write_images(folder: Path, names, size=(W, H)) -> Path:
    """Random RGB images, as files of the given names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        pixels = rng.integers(0, 256, (size[1], size[0], 3)).astype(np.uint8)
        assert cv2.imwrite(str(folder / name), pixels)
    return folder


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='PNG')
    return buffer.getvalue()


def cvat_files(masks: dict) -> dict:
    """The files of a CVAT "Segmentation mask 1.1" export of ``masks`` (name -> mask)."""
    labelmap = '# label:color_rgb:parts:actions\n' + ''.join(
        f'{label}:{r},{g},{b}::\n' for label, (r, g, b) in zip(LABELS, COLOURS))
    files = {'labelmap.txt': labelmap.encode(),
             'ImageSets/Segmentation/default.txt': '\n'.join(masks).encode()}
    for name, mask in masks.items():
        files[f'SegmentationClass/{name}.png'] = png_bytes(
            np.array(COLOURS, np.uint8)[mask])
    return files


def write_zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def compressed_rle(region: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(region.astype(np.uint8)))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


def uncompressed_rle(region: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with 0s."""
    flat = region.T.ravel().astype(np.uint8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts = [0] + counts
    return dict(size=[H, W], counts=counts)


def coco_doc(images: list) -> dict:
    """A COCO document; ``images``: (file name, [(label, segmentation)], size)."""
    categories = [dict(id=k + 1, name=label) for k, label in enumerate(LABELS[1:])]
    ids = {c['name']: c['id'] for c in categories}
    doc = dict(images=[], annotations=[], categories=categories)
    for image_id, (name, anns, size) in enumerate(images, start=1):
        doc['images'].append(dict(id=image_id, file_name=name, width=size[0], height=size[1]))
        for label, segmentation in anns:
            doc['annotations'].append(dict(
                id=len(doc['annotations']) + 1, image_id=image_id, iscrowd=0,
                category_id=ids.get(label, label), segmentation=segmentation))
    return doc


def per_class(mask: np.ndarray, encode) -> list:
    """One annotation per class present but Clean, encoded by ``encode``."""
    return [(LABELS[c], encode(mask == c)) for c in range(1, len(CLASSES)) if (mask == c).any()]


def coco_polygons() -> list:
    return [(LABELS[c], [[float(v) for point in points for v in point]])
            for c, points in POLYGONS]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def brush_result(label: str, region: np.ndarray, size=(W, H)) -> dict:
    return dict(id=f'b-{label}', type='brushlabels', from_name='tag', to_name='image',
                original_width=size[0], original_height=size[1], image_rotation=0,
                value=dict(format='rle', rle=brush.mask2rle(region.astype(np.uint8) * 255),
                           brushlabels=[label]))


def polygon_result(label: str, points) -> dict:
    return dict(id=f'p-{label}', type='polygonlabels', from_name='tag', to_name='image',
                original_width=W, original_height=H, image_rotation=0,
                value=dict(points=[[100.0 * x / W, 100.0 * y / H] for x, y in points],
                           polygonlabels=[label], closed=True))


def ls_task(task_id: int, url: str, results=None, predictions=None, cancelled=False) -> dict:
    task = dict(id=task_id, data=dict(image=url), annotations=[], predictions=[])
    if cancelled:
        task['annotations'].append(dict(id=900 + task_id, was_cancelled=True, result=[]))
    if results is not None:
        task['annotations'].append(dict(id=100 + task_id, was_cancelled=False, result=results))
    if predictions is not None:
        task['predictions'].append(dict(id=200 + task_id, result=predictions))
    return task


def read_root(out: Path) -> dict:
    """sample id -> (split, mask on disk) of a data root."""
    found = {}
    for split in ('train', 'val'):
        for path in sorted((out / 'ann_dir' / split).glob('*.png')):
            found[path.stem] = (split, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
            assert (out / 'img_dir' / split / path.name).is_file()
    return found


def run_import(fmt, annotations, images, out, **kwargs):
    kwargs.setdefault('classes', CLASSES)
    return import_annotations(fmt, annotations, images, out, progress=False, **kwargs)


def assert_masks(out: Path, expected: dict) -> None:
    found = read_root(out)
    assert sorted(found) == sorted(expected)
    for sample_id, mask in expected.items():
        on_disk = found[sample_id][1]
        assert on_disk.dtype == np.uint8 and on_disk.shape == (H, W), sample_id
        np.testing.assert_array_equal(on_disk, TO_DISK[mask], err_msg=sample_id)


def build_dataset(out: Path, split: str, label_mode: str):
    import artseg_mm  # noqa: F401  registers ARTeFACTDataset
    from mmseg.registry import DATASETS
    return DATASETS.build(dict(
        type='ARTeFACTDataset', label_mode=label_mode, data_root=str(out),
        data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='mmseg.LoadAnnotations')]))


def load_tool():
    """tools/dataset_converters/from_annotations.py as a module, to call main()."""
    spec = importlib.util.spec_from_file_location('from_annotations', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the three formats
def test_cvat_zip_and_folder(tmp_path):
    masks = {f'scan_{k}': known_mask(k) for k in range(3)}
    images = write_images(tmp_path / 'images', [f'{name}.png' for name in masks])
    files = cvat_files(masks)
    archive = write_zip(tmp_path / 'task.zip', files)
    out = tmp_path / 'root'
    summary = run_import('cvat', archive, images, out)
    assert_masks(out, masks)
    assert summary['images_per_split'] == dict(train=2, val=1)
    for sample_id, (split, _) in read_root(out).items():  # PNG images are copied as they are
        assert (out / 'img_dir' / split / f'{sample_id}.png').read_bytes() == \
            (images / f'{sample_id}.png').read_bytes()
    # the unpacked folder reads the same
    folder = tmp_path / 'unpacked'
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    read = dict(read_cvat(folder, CLASSES))
    assert sorted(read) == sorted(masks)
    for name, mask in masks.items():
        np.testing.assert_array_equal(read[name], mask)


def test_coco_rle_and_polygons(tmp_path):
    masks = {'rle': known_mask(10), 'plain_rle': known_mask(11), 'poly': polygon_mask(),
             'empty': np.zeros((H, W), np.uint8)}
    doc = coco_doc([('folder/rle.png', per_class(masks['rle'], compressed_rle), (W, H)),
                    ('plain_rle.jpg', per_class(masks['plain_rle'], uncompressed_rle), (W, H)),
                    ('poly.png', coco_polygons(), (W, H)),
                    ('empty.png', [], (W, H))])
    annotations = write_json(tmp_path / 'coco.json', doc)
    # the JPEG annotated is at hand as a JPEG: decoded and written as PNG
    images = write_images(tmp_path / 'images', ['rle.png', 'poly.png', 'empty.png'])
    write_images(images, ['plain_rle.jpg'])
    out = tmp_path / 'root'
    run_import('coco', annotations, images, out)
    assert_masks(out, masks)
    split, _ = read_root(out)['plain_rle']
    converted = cv2.imread(str(out / 'img_dir' / split / 'plain_rle.png'))
    np.testing.assert_array_equal(converted, cv2.imread(str(images / 'plain_rle.jpg')))
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['source']['format'] == 'coco' and meta['source']['file'] == str(annotations)
    assert meta['label_mode_on_disk'] == 'full' and meta['model_classes'] == CLASSES
    assert meta['converter'] == imports.IMPORTER_NAME
    assert meta['image_files']['plain_rle'] == 'plain_rle.jpg'
    read = dict(read_coco(annotations, CLASSES))
    np.testing.assert_array_equal(read['poly.png'], masks['poly'])


def test_label_studio_brush_and_polygons(tmp_path):
    masks = {'brush': known_mask(20), 'local': known_mask(21), 'poly': polygon_mask(),
             'empty': np.zeros((H, W), np.uint8), 'predicted': known_mask(22)}
    polygons = [polygon_result(LABELS[c], points) for c, points in POLYGONS]
    tasks = [
        # uploaded: Label Studio prefixes the file name
        ls_task(1, '/data/upload/3/1a2b3c4d-brush.png',
                per_class_results(masks['brush']), cancelled=True),
        ls_task(2, '/data/local-files/?d=scans%2Flocal.png', per_class_results(masks['local']),
                predictions=per_class_results(known_mask(99))),  # the annotation counts
        ls_task(3, 'poly.png', polygons + [dict(type='choices', value=dict(choices=['ok']))]),
        ls_task(4, 'empty.png', []),
        ls_task(5, 'predicted.png', predictions=per_class_results(masks['predicted'])),
    ]
    annotations = write_json(tmp_path / 'ls.json', tasks)
    images = write_images(tmp_path / 'images', [f'{name}.png' for name in masks])
    out = tmp_path / 'root'
    run_import('label-studio', annotations, images, out, use_predictions=True)
    assert_masks(out, masks)
    # without the flag, a task with only predictions is not annotated
    with pytest.raises(AnnotationImportError,
                       match=r'1 image\(s\) in .* have no annotation in .*: predicted.png'):
        run_import('label-studio', annotations, images, tmp_path / 'other')
    read = dict(read_label_studio(write_json(tmp_path / 'poly.json', tasks[2:3]), CLASSES))
    np.testing.assert_array_equal(read['poly.png'], masks['poly'])
    # two corrections of one task: which to train on is not guessed
    tasks[3]['annotations'].append(dict(id=77, result=[]))
    with pytest.raises(AnnotationImportError, match=r'task 4 has 2 annotations \(ids \[104, 77\]'):
        run_import('label-studio', write_json(tmp_path / 'two.json', tasks), images,
                   tmp_path / 'two', use_predictions=True)


def per_class_results(mask: np.ndarray) -> list:
    return [brush_result(LABELS[c], mask == c) for c in range(1, len(CLASSES))
            if (mask == c).any()]


def test_dataset_reads_the_imported_root(tmp_path):
    masks = {f'scan_{k}': known_mask(30 + k) for k in range(4)}
    images = write_images(tmp_path / 'images', [f'{name}.png' for name in masks])
    archive = write_zip(tmp_path / 'task.zip', cvat_files(masks))
    out = tmp_path / 'root'
    run_import('cvat', archive, images, out)
    weights = json.loads((out / 'class_weights.json').read_text())
    assert len(weights['classes']) == 16 and weights['computed_on'] == 'train'
    assert (out / 'class_weights_binary.json').is_file()
    for split in ('train', 'val'):
        dataset = build_dataset(out, split, 'full')
        assert len(dataset) >= 1
        for k in range(len(dataset)):
            item = dataset[k]
            sample_id = Path(item['img_path']).stem
            np.testing.assert_array_equal(item['gt_seg_map'], TO_DISK[masks[sample_id]])
            assert item['img'].shape == (H, W, 3)

    # the default classes are the binary ones, written as binary ids
    binary = {name: (mask > 0).astype(np.uint8) for name, mask in masks.items()}
    doc = coco_doc([(f'{name}.png', [('Damage', compressed_rle(mask == 1))], (W, H))
                    for name, mask in binary.items()])
    doc['categories'] = [dict(id='Damage', name='DAMAGE')]
    out = tmp_path / 'binary'
    import_annotations('coco', write_json(tmp_path / 'coco.json', doc), images, out,
                       progress=False)
    assert json.loads((out / 'meta.json').read_text())['label_mode_on_disk'] == 'binary'
    dataset = build_dataset(out, 'train', 'binary')
    for k in range(len(dataset)):
        item = dataset[k]
        np.testing.assert_array_equal(item['gt_seg_map'], binary[Path(item['img_path']).stem])


# ------------------------------------------------------------------------- errors
def overlap_doc(cracks_then_dust=True) -> dict:
    square = [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]]  # pixels 0..3
    shifted = [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]]  # 2..5: 4 shared pixels
    anns = [('Cracks', square), ('dust', shifted)]
    return coco_doc([('a.png', anns if cracks_then_dust else anns[::-1], (W, H))])


def test_overlap_is_an_error_unless_later_wins(tmp_path):
    images = write_images(tmp_path / 'images', ['a.png'])
    annotations = write_json(tmp_path / 'coco.json', overlap_doc())
    with pytest.raises(AnnotationImportError,
                       match=r"image a.png: 4 pixels are claimed by both 'Cracks' and 'Dust'"):
        run_import('coco', annotations, images, tmp_path / 'out')
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()
    run_import('coco', annotations, images, tmp_path / 'out', overlap='later')
    mask = read_root(tmp_path / 'out')['a'][1]
    assert (mask[2:4, 2:4] == TO_DISK[3]).all() and (mask[0:2, 0:4] == TO_DISK[2]).all()
    # the same class twice is no conflict
    same = coco_doc([('a.png', [('Cracks', [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]]),
                                ('Cracks', [[0.0, 0.0, 4.0, 4.0, 0.0, 4.0]])], (W, H))])
    run_import('coco', write_json(tmp_path / 'same.json', same), images, tmp_path / 'same')
    # Label Studio: two brushes of different classes on one pixel
    region = np.zeros((H, W), bool)
    region[H - 1, W - 1] = True
    task = ls_task(1, 'a.png', [brush_result('Cracks', region), brush_result('Dust', region)])
    with pytest.raises(AnnotationImportError,
                       match=r"image a.png: 1 pixels are claimed by both 'Cracks' and 'Dust'"):
        run_import('label-studio', write_json(tmp_path / 'ls.json', [task]), images,
                   tmp_path / 'ls')


def test_coco_annotations_are_painted_in_the_order_listed(tmp_path):
    """Consecutive annotations of one class are decoded together (fast for many specks);
    across classes the order listed still decides which wins with overlap='later'."""
    anns = [('Cracks', [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]]),  # rows/cols 0..3
            ('Cracks', [[8.0, 0.0, 10.0, 0.0, 10.0, 2.0, 8.0, 2.0]]),
            ('dust', [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]]),  # 2..5
            ('Cracks', [[3.0, 3.0, 5.0, 3.0, 5.0, 5.0, 3.0, 5.0]])]  # 3..4, over the dust
    path = write_json(tmp_path / 'coco.json', coco_doc([('a.png', anns, (W, H))]))
    ((_, mask),) = read_coco(path, CLASSES, overlap='later')
    expected = np.zeros((H, W), np.uint8)
    expected[0:4, 0:4] = expected[0:2, 8:10] = 2
    expected[2:6, 2:6] = 3
    expected[3:5, 3:5] = 2
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(AnnotationImportError, match=r"image a.png: 4 pixels are claimed by "
                                                    r"both 'Cracks' and 'Dust' \(.*annotation 3\)"):
        list(read_coco(path, CLASSES))


def test_unknown_label_names_it_and_the_classes(tmp_path):
    images = write_images(tmp_path / 'images', ['a.png'])
    doc = coco_doc([('a.png', [('Scratch', [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]])], (W, H))])
    doc['categories'].append(dict(id='Scratch', name='Scratch'))
    with pytest.raises(AnnotationImportError,
                       match=r"label 'Scratch' is not one of the classes \['Clean', 'Damage'\]"):
        import_annotations('coco', write_json(tmp_path / 'coco.json', doc), images,
                           tmp_path / 'out', progress=False)
    archive = write_zip(tmp_path / 'task.zip', cvat_files({'a': known_mask(0)}))
    with pytest.raises(AnnotationImportError,
                       match=r"label '(material LOSS|Cracks|dust)' is not one of"):
        import_annotations('cvat', archive, images, tmp_path / 'out', progress=False)
    # a colour the labelmap does not name
    files = cvat_files({'a': known_mask(0)})
    files['SegmentationClass/a.png'] = png_bytes(np.full((H, W, 3), 7, np.uint8))
    with pytest.raises(AnnotationImportError, match=r'120 pixels have the colour \(7, 7, 7\)'):
        run_import('cvat', write_zip(tmp_path / 'odd.zip', files), images, tmp_path / 'out')


def test_images_and_annotations_without_each_other(tmp_path):
    images = write_images(tmp_path / 'images', ['a.png', 'b.png', 'c.png'])
    doc = coco_doc([('a.png', [], (W, H)), ('b.png', [], (W, H))])
    annotations = write_json(tmp_path / 'coco.json', doc)
    with pytest.raises(AnnotationImportError, match=r'have no annotation in .*: c.png; pass '
                                                    r'--skip-unannotated'):
        run_import('coco', annotations, images, tmp_path / 'out')
    summary = run_import('coco', annotations, images, tmp_path / 'out', skip_unannotated=True)
    assert summary['left_out_unannotated'] == ['c.png']
    assert sorted(read_root(tmp_path / 'out')) == ['a', 'b']
    assert json.loads((tmp_path / 'out' / 'meta.json').read_text())[
        'left_out_unannotated'] == ['c.png']
    doc['images'].append(dict(id=9, file_name='ghost.png', width=W, height=H))
    with pytest.raises(AnnotationImportError,
                       match=r'1 annotated image\(s\) of .* are not in .*: ghost.png'):
        run_import('coco', write_json(tmp_path / 'ghost.json', doc), images, tmp_path / 'x',
                   skip_unannotated=True)


def test_size_mismatch_names_both_sizes(tmp_path):
    images = write_images(tmp_path / 'images', ['a.png'])
    doc = coco_doc([('a.png', [], (16, H))])
    with pytest.raises(AnnotationImportError,
                       match=r'image .*a.png is 12x10 px but its annotation .* is 16x10 px'):
        run_import('coco', write_json(tmp_path / 'coco.json', doc), images, tmp_path / 'out')
    archive = write_zip(tmp_path / 'task.zip', cvat_files({'a': known_mask(0).T.copy()}))
    with pytest.raises(AnnotationImportError, match=r'is 12x10 px but its annotation .* is '
                                                    r'10x12 px \(width and height swapped'):
        run_import('cvat', archive, images, tmp_path / 'out')


def test_output_is_replaced_only_when_this_importer_wrote_it(tmp_path):
    images = write_images(tmp_path / 'images', ['a.png', 'b.png'])
    annotations = write_json(tmp_path / 'coco.json', coco_doc(
        [('a.png', [], (W, H)), ('b.png', [], (W, H))]))
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'mine.txt').write_text('mine')
    with pytest.raises(ImportUsageError, match='is not empty; pass --force'):
        run_import('coco', annotations, images, out)
    with pytest.raises(ImportUsageError, match=r'--force replaces only a data root this '
                                               r'importer wrote .* holds mine.txt'):
        run_import('coco', annotations, images, out, force=True)
    assert (out / 'mine.txt').read_text() == 'mine'
    (out / 'mine.txt').unlink()
    run_import('coco', annotations, images, out)
    run_import('coco', annotations, images, out, force=True)
    with pytest.raises(ImportUsageError, match='is a source'):
        run_import('coco', annotations, images, tmp_path, force=True)


# -------------------------------------------------------------------------- split
def test_split_is_deterministic_with_one_image_in_each_split(tmp_path):
    ids = [f'img_{k}' for k in range(10)]
    first = split_samples(ids, seed=3)
    assert first == split_samples(list(reversed(ids)), seed=3)
    assert sum(s == 'val' for s in first.values()) == 2
    assert any(split_samples(ids, seed=s) != first for s in range(4, 10))
    assert sorted(split_samples(['a', 'b'], seed=0, val_fraction=0.0).values()) == \
        ['train', 'val']
    assert split_samples(['a'], seed=0) == {'a': 'train'}
    assert split_samples(ids, val=['img_2.png', 'img_5'], names={'img_2.png': 'img_2'}) == {
        i: 'val' if i in ('img_2', 'img_5') else 'train' for i in ids}
    with pytest.raises(ImportUsageError, match=r"--val names images that are not imported: "
                                               r"\['nope'\]"):
        split_samples(ids, val=['nope'])

    masks = {f'scan_{k}': known_mask(k) for k in range(6)}
    images = write_images(tmp_path / 'images', [f'{name}.png' for name in masks])
    archive = write_zip(tmp_path / 'task.zip', cvat_files(masks))
    splits = []
    for k in range(2):
        run_import('cvat', archive, images, tmp_path / f'out{k}', seed=7)
        splits.append({i: s for i, (s, _) in read_root(tmp_path / f'out{k}').items()})
    assert splits[0] == splits[1]
    assert splits[0] == split_samples(list(masks), seed=7)


# ---------------------------------------------------------------------- classes
def test_classes_from_a_config_a_file_and_json(tmp_path):
    assert imports.resolve_classes() == ['Clean', 'Damage']
    assert imports.resolve_classes('["Clean", "Cracks"]') == ['Clean', 'Cracks']
    classes_json = write_json(tmp_path / 'classes.json',
                              dict(classes=CLASSES, palette=FULL_PALETTE[:4]))
    assert imports.resolve_classes(str(classes_json)) == CLASSES
    config = REPO / 'configs' / 'resnet50_unet_artefact_full.py'
    assert imports.resolve_classes(str(config))[:2] == ['Clean', 'Material loss']
    with pytest.raises(ImportUsageError, match=r"has no 'Clean'"):
        imports.resolve_classes('["Damage"]')
    with pytest.raises(ImportUsageError, match='no such model folder'):
        imports.resolve_classes(str(tmp_path / 'missing'))
    with pytest.raises(ImportUsageError, match=r"\['Paint'\] are neither ARTeFACT classes"):
        imports.disk_ids(['Clean', 'Paint'])


# ------------------------------------------------------------------- command line
def test_command_line(tmp_path, capsys):
    tool = load_tool()
    images = write_images(tmp_path / 'images', ['a.png', 'b.png'])
    annotations = write_json(tmp_path / 'coco.json', coco_doc(
        [('a.png', coco_polygons(), (W, H)), ('b.png', [], (W, H))]))
    out = tmp_path / 'out'
    base = ['coco', str(annotations), '--images', str(images), '--out', str(out),
            '--classes', json.dumps(CLASSES), '--no-progress']
    assert tool.main(base + ['--val', 'b']) == 0
    assert read_root(out)['b'][0] == 'val'
    assert 'images per split: train 1, val 1' in capsys.readouterr().out
    # usage mistakes: one line, status 2
    assert tool.main(base) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'not empty; pass --force' in err
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['coco', str(annotations), '--out', str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1 and '--images' in err
    # annotations that cannot become masks: one line, status 1
    assert tool.main(base[:-3] + ['--force', '--no-progress']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "label 'material LOSS' is not one of" in err
    # the script itself, as a user runs it
    proc = run_tool([PY, TOOL, 'coco', annotations, '--images', images, '--out', out,
                     '--val-fraction', '2'], check=False)
    assert proc.returncode == 2 and proc.stderr.count('\n') == 1
    assert 'Traceback' not in proc.stderr and '--val-fraction must be in [0, 1)' in proc.stderr


# --------------------------------------------------------------- export round trip
def test_exports_import_back_to_the_masks(tmp_path):
    exports = pytest.importorskip('artseg_mm.interchange.exports')
    mask = known_mask(40)
    images = write_images(tmp_path / 'images', ['scan.png'])
    written = exports.export_masks(mask, CLASSES, FULL_PALETTE[:4], tmp_path / 'exports',
                                   'scan', ['coco', 'cvat', 'labelstudio'],
                                   image_path='scan.png')
    for fmt, ours, options in (('coco', 'coco', {}), ('cvat', 'cvat', {}),
                               ('labelstudio', 'label-studio', dict(use_predictions=True))):
        out = tmp_path / fmt
        run_import(ours, written[fmt], images, out, **options)
        assert_masks(out, {'scan': mask})
