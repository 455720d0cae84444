"""ARTeFACTDataset and its loading transforms, on a tiny generated demo set."""
import csv
import shutil

import cv2
import numpy as np
import pytest

import artseg_mm  # noqa: F401  (registers the project's modules)
import artseg_mm.datasets  # noqa: F401
from artseg_mm.data_prep.demo_generator import generate_demo_dataset
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS
from conftest import PY, run_tool

META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'material', 'content', 'type')
PIPELINE = [
    dict(type='LoadArtSegImageFromFile'),
    dict(type='LoadArtSegAnnotations'),
    dict(type='PackSegInputs', meta_keys=META_KEYS),
]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo') / 'artefact_demo'
    generate_demo_dataset(root, num_images=6, num_val=2, seed=3, size=64, progress=False)
    return root


@pytest.fixture
def root_copy(demo_root, tmp_path):
    """A copy of the demo set that a test may break."""
    dst = tmp_path / 'data'
    shutil.copytree(demo_root, dst)
    return dst


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(root, split='train', pipeline=PIPELINE, **kwargs):
    cfg = dict(type='ARTeFACTDataset', data_root=str(root),
               data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
               pipeline=pipeline)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def read_mask(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def read_csv(path):
    with open(path, newline='') as f:
        return {row['id']: row for row in csv.DictReader(f)}


def expected_binary(mask):
    """Independent full -> binary mapping: 0 stays 0, ids 1..15 become 1, 255 stays 255."""
    out = np.where(mask == 0, 0, 1).astype(np.uint8)
    out[mask == 255] = 255
    return out


@pytest.mark.parametrize('label_mode', ['binary', 'full'])
@pytest.mark.parametrize('loader', ['LoadArtSegAnnotations', 'LoadAnnotations'])
def test_labels_match_masks_on_disk(demo_root, label_mode, loader):
    pipeline = [dict(type='LoadArtSegImageFromFile'), dict(type=loader),
                dict(type='PackSegInputs', meta_keys=META_KEYS)]
    ds = build(demo_root, 'train', pipeline=pipeline, label_mode=label_mode)
    assert len(ds) == 4
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        on_disk = read_mask(sample.metainfo['seg_map_path'])
        expected = expected_binary(on_disk) if label_mode == 'binary' else on_disk
        got = sample.gt_sem_seg.data.numpy()[0]
        np.testing.assert_array_equal(got, expected)
        assert ds[idx]['inputs'].shape == (3, 64, 64)
    if label_mode == 'binary':
        assert ds.metainfo['classes'] == ('Clean', 'Damage')
        assert len(ds.metainfo['palette']) == 2
    else:
        assert len(ds.metainfo['classes']) == 16 and ds.metainfo['classes'][9] == 'Cracks'
        assert ds.metainfo['label_map'] is None
    assert ds.metainfo['label_mode'] == label_mode


def test_binary_labels_include_damage_and_ignore(demo_root):
    ds = build(demo_root, 'train', label_mode='binary')
    values = set()
    for idx in range(len(ds)):
        values |= set(np.unique(ds[idx]['data_samples'].gt_sem_seg.data.numpy()).tolist())
    assert {0, 1} <= values <= {0, 1, 255}


def test_metadata_reaches_data_samples(demo_root):
    rows = read_csv(demo_root / 'meta' / 'val.csv')
    ds = build(demo_root, 'val', test_mode=True)
    assert len(ds) == 2
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        meta = ds[idx]['data_samples'].metainfo
        row = rows[info['sample_id']]
        assert meta['material'] == row['material'] and meta['content'] == row['content']
        assert meta['type'] == row['type']
        assert meta['img_path'].endswith(f"{info['sample_id']}.png")


def test_no_sidecar_gives_none(root_copy):
    shutil.rmtree(root_copy / 'meta')
    ds = build(root_copy, 'train')
    assert ds.get_data_info(0)['material'] is None
    assert ds[0]['data_samples'].metainfo['content'] is None


def test_explicit_meta_file(root_copy):
    ds = build(root_copy, 'val', meta_file='meta/val.csv')
    assert ds.get_data_info(0)['material'] in ('canvas', 'paper', 'photograph', 'parchment')
    with pytest.raises(FileNotFoundError, match='nothing.csv does not exist'):
        build(root_copy, 'val', meta_file='meta/nothing.csv')


def test_sidecar_missing_an_id(root_copy):
    path = root_copy / 'meta' / 'val.csv'
    lines = path.read_text().splitlines()
    dropped = lines[2].split(',')[0]
    path.write_text('\n'.join(lines[:2]) + '\n')
    with pytest.raises(ValueError) as err:
        build(root_copy, 'val')
    assert str(path) in str(err.value) and f"'{dropped}'" in str(err.value)
    assert f'{dropped}.png' in str(err.value)


def test_sidecar_without_id_column(root_copy):
    (root_copy / 'meta' / 'val.csv').write_text('name,material\nx,paper\n')
    with pytest.raises(ValueError, match=r'val.csv has no `id` column'):
        build(root_copy, 'val')


def test_bad_label_mode(demo_root):
    with pytest.raises(ValueError,
                       match=r"label_mode must be one of \('binary', 'full'\), got 'multi'"):
        build(demo_root, label_mode='multi')


def test_binary_mode_rejects_other_classes(demo_root):
    with pytest.raises(ValueError, match='label_mode=binary takes the classes'):
        build(demo_root, label_mode='binary', metainfo=dict(classes=('Clean', 'Cracks')))


def assert_how_to_make_data(message):
    assert 'python tools/misc/make_demo_data.py' in message
    assert 'python tools/dataset_converters/artefact.py' in message
    assert 'make demo' in message


def test_missing_data_root(tmp_path):
    root = tmp_path / 'no_such_root'
    with pytest.raises(FileNotFoundError) as err:
        build(root)
    assert f'data root {root} does not exist' in str(err.value)
    assert_how_to_make_data(str(err.value))


def test_missing_split_folder(root_copy):
    shutil.rmtree(root_copy / 'img_dir' / 'val')
    with pytest.raises(FileNotFoundError) as err:
        build(root_copy, 'val')
    assert f"image folder {root_copy / 'img_dir' / 'val'} does not exist" in str(err.value)
    assert_how_to_make_data(str(err.value))


def test_empty_split(root_copy):
    for path in (root_copy / 'img_dir' / 'val').iterdir():
        path.unlink()
    with pytest.raises(ValueError) as err:
        build(root_copy, 'val')
    assert f"{root_copy / 'img_dir' / 'val'} holds no .png images (empty split)" in str(err.value)
    assert_how_to_make_data(str(err.value))


def test_image_without_mask(root_copy):
    mask = root_copy / 'ann_dir' / 'train' / 'demo_0001.png'
    mask.unlink()
    with pytest.raises(FileNotFoundError) as err:
        build(root_copy, 'train')
    image = root_copy / 'img_dir' / 'train' / 'demo_0001.png'
    assert f'image {image} has no mask {mask}' in str(err.value)
    assert '1 of 4 images have no mask' in str(err.value)


def test_files_the_listing_leaves_out_are_named(root_copy):
    from artseg_mm.datasets.artefact import LeftOutFilesWarning
    image = root_copy / 'img_dir' / 'train' / 'scan.jpg'
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    stray = sorted((root_copy / 'ann_dir' / 'train').glob('*.png'))[0]
    shutil.copy(stray, stray.with_name('orphan.png'))
    with pytest.warns(LeftOutFilesWarning) as records:
        ds = build(root_copy, 'train')
    messages = [str(r.message) for r in records if r.category is LeftOutFilesWarning]
    assert len(ds) == 4  # the jpg is not read, the orphan mask has no image
    assert any('files that are not .png images are not read (1): scan.jpg' in m
               for m in messages)
    assert any('masks without an image' in m and '(1): orphan.png' in m for m in messages)


def index_of(ds, name):
    return next(i for i in range(len(ds)) if ds.get_data_info(i)['img_path'].endswith(name))


def test_mask_of_another_size(root_copy):
    mask = root_copy / 'ann_dir' / 'train' / 'demo_0002.png'
    cv2.imwrite(str(mask), np.zeros((40, 50), np.uint8))
    ds = build(root_copy, 'train')
    with pytest.raises(ValueError) as err:
        ds[index_of(ds, 'demo_0002.png')]
    assert f'mask {mask} is 50x40 (WxH)' in str(err.value)
    assert 'demo_0002.png is 64x64' in str(err.value)


def test_mask_values_outside_label_set(root_copy):
    mask = root_copy / 'ann_dir' / 'train' / 'demo_0000.png'
    values = read_mask(mask)
    values[0, 0], values[5, 5], values[6, 6] = 16, 77, 77
    cv2.imwrite(str(mask), values)
    ds = build(root_copy, 'train', label_mode='binary')
    with pytest.raises(ValueError) as err:
        ds[index_of(ds, 'demo_0000.png')]
    assert f'mask {mask} holds values [16, 77] outside the label set' in str(err.value)


def test_colour_mask_is_rejected(root_copy):
    mask = root_copy / 'ann_dir' / 'train' / 'demo_0000.png'
    cv2.imwrite(str(mask), np.zeros((64, 64, 3), np.uint8) + 9)
    ds = build(root_copy, 'train')
    with pytest.raises(ValueError, match=r'has shape \(64, 64, 3\); expected a single-channel'):
        ds[index_of(ds, 'demo_0000.png')]


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('damage', ['truncated', 'empty'])
def test_unreadable_image(root_copy, backend, damage):
    image = root_copy / 'img_dir' / 'train' / 'demo_0003.png'
    data = image.read_bytes()
    image.write_bytes(data[:len(data) // 2] if damage == 'truncated' else b'')
    pipeline = [dict(type='LoadArtSegImageFromFile', imdecode_backend=backend)] + PIPELINE[1:]
    ds = build(root_copy, 'train', pipeline=pipeline)  # train mode: no silent re-draw
    with pytest.raises(ValueError) as err:
        ds[index_of(ds, 'demo_0003.png')]
    assert f'cannot read image {image}: the file is truncated, empty or not a valid' \
        in str(err.value)


def test_truncated_mask(root_copy):
    mask = root_copy / 'ann_dir' / 'train' / 'demo_0003.png'
    data = mask.read_bytes()
    mask.write_bytes(data[:len(data) // 2])
    ds = build(root_copy, 'train')
    with pytest.raises(ValueError) as err:
        ds[index_of(ds, 'demo_0003.png')]
    assert f'cannot read mask {mask}' in str(err.value) and 'truncated' in str(err.value)


def test_image_deleted_after_listing(root_copy):
    ds = build(root_copy, 'train')
    image = root_copy / 'img_dir' / 'train' / 'demo_0001.png'
    image.unlink()
    with pytest.raises(FileNotFoundError, match=f'image file {image} does not exist'):
        ds[index_of(ds, 'demo_0001.png')]


def test_image_loader_refuses_ignore_empty():
    with pytest.raises(ValueError, match='does not skip broken images'):
        TRANSFORMS.build(dict(type='LoadArtSegImageFromFile', ignore_empty=True))


def test_annotation_loader_needs_the_image_first(demo_root):
    pipeline = [dict(type='LoadArtSegAnnotations'), dict(type='LoadArtSegImageFromFile')]
    ds = build(demo_root, 'train', pipeline=pipeline)
    with pytest.raises(KeyError, match='put it after the image loader'):
        ds[0]
    ds = build(demo_root, 'train', pipeline=[
        dict(type='LoadArtSegAnnotations', check_size=False)])
    assert ds[0]['gt_seg_map'].shape == (64, 64)


def test_full_mode_keeps_mmseg_class_subsets(demo_root):
    ds = build(demo_root, 'train', label_mode='full', metainfo=dict(classes=('Clean', 'Cracks')))
    assert ds.metainfo['palette'] == [[0, 0, 0], [0, 0, 166]]
    sample = ds[0]['data_samples']
    on_disk = read_mask(sample.metainfo['seg_map_path'])
    expected = np.full_like(on_disk, 255)
    expected[on_disk == 0] = 0
    expected[on_disk == 9] = 1
    np.testing.assert_array_equal(sample.gt_sem_seg.data.numpy()[0], expected)


def test_full_mode_refuses_binary_masks_on_disk(tmp_path):
    """A converter run with --label-mode binary leaves no damage classes to learn."""
    import json
    from artseg_mm.data_prep.demo_generator import generate_demo_dataset
    from mmseg.registry import DATASETS
    root = tmp_path / 'binary_on_disk'
    generate_demo_dataset(root, num_images=3, num_val=1, size=32, progress=False)
    meta = json.loads((root / 'meta.json').read_text())
    meta['label_mode_on_disk'] = 'binary'
    (root / 'meta.json').write_text(json.dumps(meta))
    cfg = dict(type='ARTeFACTDataset', data_root=str(root), label_mode='full',
               data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
               pipeline=[])
    with pytest.raises(ValueError, match='masks on disk are binary'):
        DATASETS.build(cfg)
    cfg['label_mode'] = 'binary'
    assert len(DATASETS.build(cfg)) == 2


@pytest.mark.parametrize('label_mode', ['binary', 'full'])
def test_metainfo_follows_label_mode(demo_root, label_mode):
    """mmseg's confusion_matrix.py reads dataset.METAINFO: it must be the run's label set."""
    from artseg_mm.datasets.artefact_classes import (BINARY_CLASSES, BINARY_PALETTE,
                                                     FULL_CLASSES, FULL_PALETTE)
    classes, palette = ((BINARY_CLASSES, BINARY_PALETTE) if label_mode == 'binary'
                        else (FULL_CLASSES, FULL_PALETTE))
    ds = build(demo_root, label_mode=label_mode)
    assert ds.METAINFO['classes'] == tuple(classes)
    assert ds.metainfo['classes'] == tuple(classes)
    assert ds.METAINFO['palette'] == [list(c) for c in palette]
    assert len(ds.metainfo['palette']) == len(classes)
    # the class attribute stays the label set on disk, so a second dataset is unaffected
    assert type(ds).METAINFO['classes'] == FULL_CLASSES
    # labels loaded in binary mode use the binary ids
    labels = np.unique(ds[0]['data_samples'].gt_sem_seg.data.numpy())
    assert set(labels.tolist()) <= set(range(len(classes))) | {255}


def test_a_broken_mmpretrain_fails_on_import_not_as_an_unregistered_transform():
    # mmengine's registry would swallow this ImportError and later report only
    # "mmpretrain.ColorJitter is not in the mmseg::transform registry"
    code = ('import sys; sys.modules["mmpretrain.datasets.transforms"] = None\n'
            'try:\n    import artseg_mm.datasets\n'
            'except ImportError as exc:\n    print("ImportError:", exc)')
    proc = run_tool([PY, '-c', code])
    assert 'ImportError:' in proc.stdout and 'mmpretrain.datasets.transforms' in proc.stdout
