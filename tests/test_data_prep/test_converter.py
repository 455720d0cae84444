"""The converter's driver on tiny parquet shards: the data root it writes (folders, masks,
sidecars, meta.json, summary and class weights), its CLI, --force and the partial folder, and
that ARTeFACTDataset reads what it writes."""
import json
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from artseg_mm.data_prep import converter
from artseg_mm.data_prep.converter import CONVERTER_VERSION
from artseg_mm.data_prep.errors import ConversionError
from artseg_mm.datasets.artefact_classes import FULL_CLASSES
from artseg_mm.datasets.layout import PARTIAL_MARKER, SIDECAR_COLUMNS, SPLITS
from conftest import PY, REPO, run_tool
from parquet_helpers import convert, read_csv, source, split_of, tree_hashes  # noqa: F401

CLI_PATH = REPO / 'tools' / 'dataset_converters' / 'artefact.py'


def test_layout_full_masks_and_metadata(tmp_path, source, capsys):
    src, samples = source
    out = tmp_path / 'artefact'
    summary = convert(src, out, resize_long_side=0, val=2, test=2)
    assert sorted(p.name for p in out.iterdir()) == [
        'ann_dir', 'class_weights.json', 'class_weights_binary.json',
        'img_dir', 'meta', 'meta.json', 'summary.json']
    assert not (tmp_path / 'artefact.partial').exists()
    splits = split_of(out)
    assert sorted(splits) == [s['id'] for s in samples]
    assert summary['images_per_split'] == dict(train=6, val=2, test=2)
    for s in samples:
        split = splits[s['id']]
        img = cv2.imread(str(out / 'img_dir' / split / f'{s["id"]}.png'),
                         cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(img[..., ::-1], s['image_array'])
        ann = np.asarray(Image.open(out / 'ann_dir' / split /
                                    f'{s["id"]}.png'))
        assert ann.ndim == 2
        np.testing.assert_array_equal(ann, s['mask_array'])

    rec = read_csv(out / 'meta' / 'train.csv')[0]
    assert list(rec) == list(SIDECAR_COLUMNS)
    assert rec['transform'] == 'none' and rec['scale'] == '1.0'
    assert rec['source_width'] == '30' and rec['source_height'] == '20'
    assert rec['parent_id'] == rec['id'] and rec['tile_x'] == ''
    assert rec['content'] == 'Artistic depiction'
    assert rec['type'] == 'Photograph'

    meta = json.loads((out / 'meta.json').read_text())
    assert meta['label_mode_on_disk'] == 'full'
    assert meta['converter_version'] == CONVERTER_VERSION
    assert meta['seed'] == 0
    assert [f['path'] for f in meta['source_files']] == [
        'data/train-00000.parquet', 'data/train-00001.parquet',
        'data/train-00002.parquet']

    # class statistics against an independent count over the train masks
    train = [s for s in samples if splits[s['id']] == 'train']
    counts = np.zeros(16, np.int64)
    for s in train:
        values, n = np.unique(s['mask_array'], return_counts=True)
        for v, c in zip(values, n):
            if v != 255:
                counts[v] += c
    written = json.loads((out / 'summary.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert [written['class_pixels']['train'][c] for c in FULL_CLASSES] == \
        counts.tolist()
    freq = counts / counts.sum()
    weights = json.loads((out / 'class_weights.json').read_text())
    assert weights['method'] == 'inverse_sqrt_frequency'
    assert weights['classes'] == list(FULL_CLASSES)
    present = freq > 0
    expected = np.where(present, 1 / np.sqrt(np.where(present, freq, 1)), 0)
    expected[~present] = expected[present].max()
    expected /= expected.mean()
    np.testing.assert_allclose(weights['class_weights'], expected, atol=1e-5)
    assert weights['absent_classes'] == [
        c for c, p in zip(FULL_CLASSES, present) if not p]
    binary = json.loads((out / 'class_weights_binary.json').read_text())
    assert binary['pixel_counts'] == [counts[0], counts[1:].sum()]
    assert written['images_per_material']['Glass'] == {
        s: sum(1 for x in samples if x['material'] == 'Glass'
               and splits[x['id']] == s) for s in SPLITS}
    assert 'images per split: train 6' in capsys.readouterr().out


def test_binary_masks_pixel_for_pixel(tmp_path, source):
    src, samples = source
    out = tmp_path / 'binary'
    convert(src, out, label_mode='binary', resize_long_side=0)
    splits = split_of(out)
    for s in samples:
        ann = cv2.imread(
            str(out / 'ann_dir' / splits[s['id']] / f'{s["id"]}.png'),
            cv2.IMREAD_UNCHANGED)
        m = s['mask_array']
        expected = np.where(m == 255, 255, (m != 0).astype(np.uint8))
        np.testing.assert_array_equal(ann, expected)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['label_mode_on_disk'] == 'binary'
    assert meta['classes'] == ['Clean', 'Damage']
    weights = json.loads((out / 'class_weights.json').read_text())
    assert weights['classes'] == ['Clean', 'Damage']
    assert not (out / 'class_weights_binary.json').exists()


def run_cli(argv, check=True):
    """tools/dataset_converters/artefact.py in a subprocess."""
    return run_tool([PY, CLI_PATH, *map(str, argv)], check=check)


def test_cli_num_samples_val(tmp_path, source):
    src, _ = source
    out = tmp_path / 'demo'
    run_cli([src, '--out', out, '--num-samples', '8', '--val', '2', '--seed', '1',
             '--no-progress'])
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['images_per_split'] == dict(train=6, val=2, test=0)
    assert json.loads((out / 'meta.json').read_text())['args'][
        'num_samples'] == 8
    refused = run_cli([src, '--out', out, '--no-progress'], check=False)
    assert refused.returncode != 0
    assert 'not empty; pass --force' in refused.stderr


def test_force_partial_and_idempotency(tmp_path, source):
    src, _ = source
    out = tmp_path / 'artefact'
    out.mkdir()
    (out / 'user_file.txt').write_text('mine')
    with pytest.raises(ConversionError,
                       match='is not empty; pass --force'):
        convert(src, out)
    assert (out / 'user_file.txt').read_text() == 'mine'
    # --force replaces only a folder the converter wrote: the user's files stay
    with pytest.raises(ConversionError,
                       match=r'--force replaces only a folder this converter wrote .*'
                             r'it holds user_file.txt'):
        convert(src, out, force=True)
    assert (out / 'user_file.txt').read_text() == 'mine'
    (out / 'user_file.txt').unlink()

    # a leftover of an interrupted run (with our marker) is cleaned up
    partial = tmp_path / 'artefact.partial'
    partial.mkdir()
    (partial / PARTIAL_MARKER).write_text('x')
    (partial / 'stale.png').write_text('x')
    convert(src, out, force=True)
    assert not partial.exists()
    first = tree_hashes(out)
    assert 'meta.json' in first and len(first) == 10 * 2 + 3 + 4
    convert(src, out, force=True)
    assert tree_hashes(out) == first

    # a foreign folder with the temporary name is not removed
    partial.mkdir()
    (partial / 'theirs.txt').write_text('x')
    with pytest.raises(ConversionError,
                       match='was not written by this converter'):
        convert(src, out, force=True)
    assert (partial / 'theirs.txt').exists()
    assert tree_hashes(out) == first


def test_out_of_the_working_folder_is_refused_before_any_work(tmp_path, source, monkeypatch):
    src, _ = source
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(converter, 'resolve_source', lambda *a, **k: pytest.fail('work started'))
    for out in ('.', '..'):
        with pytest.raises(ConversionError,
                           match=rf'--out {re.escape(out)} is the current folder'):
            convert(src, out, force=True)
    assert src.is_dir()


def test_out_that_is_a_link_is_refused_before_any_work(tmp_path, source, monkeypatch):
    """The output is replaced as a whole: a link would be replaced and its target
    left empty, and every later run refused."""
    src, _ = source
    target = tmp_path / 'target'
    target.mkdir()
    link = tmp_path / 'link'
    link.symlink_to(target)
    monkeypatch.setattr(converter, 'resolve_source', lambda *a, **k: pytest.fail('work started'))
    with pytest.raises(ConversionError, match=rf'--out {re.escape(str(link))} is a symbolic '
                                              'link'):
        convert(src, link)
    assert link.is_symlink() and list(target.iterdir()) == []


def test_dataset_reads_converter_output(tmp_path, source):
    import artseg_mm  # noqa: F401  registers ARTeFACTDataset
    from mmseg.registry import DATASETS
    src, samples = source
    out = tmp_path / 'artefact'
    convert(src, out, resize_long_side=0, val=2, test=2)
    by_id = {s['id']: s for s in samples}
    for label_mode in ('binary', 'full'):
        dataset = DATASETS.build(dict(
            type='ARTeFACTDataset', label_mode=label_mode,
            data_root=str(out),
            data_prefix=dict(img_path='img_dir/val',
                             seg_map_path='ann_dir/val'),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='mmseg.LoadAnnotations')]))
        assert len(dataset) == 2
        for k in range(2):
            item = dataset[k]
            sample = by_id[osp.basename(item['img_path'])[:-4]]
            assert item['material'] == sample['material']
            m = sample['mask_array']
            expected = m if label_mode == 'full' else np.where(
                m == 255, 255, (m != 0).astype(np.uint8))
            np.testing.assert_array_equal(item['gt_seg_map'], expected)
