"""Tests of the ARTeFACT parquet -> mmseg converter on tiny shards written
here with the published schema (PNG bytes in ``{bytes, path}`` structs)."""
import argparse
import csv
import hashlib
import io
import json
import os.path as osp
import re
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from artseg_mm.datasets import artefact_converter as conv
from artseg_mm.datasets.artefact_classes import FULL_CLASSES
from conftest import PY, run_tool

IMAGE_STRUCT = pa.struct([('bytes', pa.binary()), ('path', pa.string())])
SCHEMA = pa.schema([
    ('id', pa.string()),
    ('image', IMAGE_STRUCT),
    ('annotation', IMAGE_STRUCT),
    ('annotation_rgb', IMAGE_STRUCT),
    ('material', pa.string()),
    ('content', pa.string()),
    ('type', pa.string()),
    ('damage_description', pa.string()),
    ('llava_description', pa.string()),
    ('verified_description', pa.string()),
])
MATERIALS = ('Film', 'Glass', 'Parchment')
CLI_PATH = Path(__file__).resolve().parents[2] / 'tools' / \
    'dataset_converters' / 'artefact.py'


def png_bytes(array, mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format='PNG')
    return buf.getvalue()


def make_sample(i, h=20, w=30, material='Film'):
    """RGB image, full-id mask (ids 0..15 and 255) and their PNG bytes."""
    rng = np.random.RandomState(i)
    image = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 0, 0, 1, 3, 9, 15, 255], np.uint8),
                      size=(h, w))
    return dict(
        id=f'art_{i:03d}', image_array=image, mask_array=mask,
        image=dict(bytes=png_bytes(image), path=f'art_{i:03d}.png'),
        annotation=dict(bytes=png_bytes(mask, 'L'),
                        path=f'art_{i:03d}_ann.png'),
        annotation_rgb=dict(bytes=png_bytes(image), path=None),
        material=material, content='Artistic depiction', type='Photograph',
        damage_description='dust', llava_description='a photo',
        verified_description='yes')


def write_shards(folder, samples, per_shard=4):
    folder = Path(folder)
    (folder / 'data').mkdir(parents=True, exist_ok=True)
    for k in range(0, len(samples), per_shard):
        chunk = samples[k:k + per_shard]
        table = pa.Table.from_pylist(
            [{name: s[name] for name in SCHEMA.names} for s in chunk],
            schema=SCHEMA)
        path = folder / 'data' / f'train-{k // per_shard:05d}.parquet'
        pq.write_table(table, path, row_group_size=2)
    return folder


def samples_for(materials_counts, **kwargs):
    samples, i = [], 0
    for material, count in materials_counts:
        for _ in range(count):
            samples.append(make_sample(i, material=material, **kwargs))
            i += 1
    return samples


def convert(src, out, **kwargs):
    kwargs.setdefault('progress', False)
    return conv.convert_artefact(str(src), str(out), **kwargs)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def split_of(out):
    result = {}
    for split in conv.SPLITS:
        for rec in read_csv(Path(out) / 'meta' / f'{split}.csv'):
            result[rec['id']] = split
    return result


def tree_hashes(folder):
    folder = Path(folder)
    return {p.relative_to(folder).as_posix():
            hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture
def source(tmp_path):
    samples = samples_for([('Film', 4), ('Glass', 3), ('Parchment', 3)])
    return write_shards(tmp_path / 'raw', samples), samples


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
    assert list(rec) == list(conv.META_COLUMNS)
    assert rec['transform'] == 'none' and rec['scale'] == '1.0'
    assert rec['source_width'] == '30' and rec['source_height'] == '20'
    assert rec['parent_id'] == rec['id'] and rec['tile_x'] == ''
    assert rec['content'] == 'Artistic depiction'
    assert rec['type'] == 'Photograph'

    meta = json.loads((out / 'meta.json').read_text())
    assert meta['label_mode_on_disk'] == 'full'
    assert meta['converter_version'] == conv.CONVERTER_VERSION
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
               and splits[x['id']] == s) for s in conv.SPLITS}
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


def test_resize_long_side(tmp_path):
    big = make_sample(0, h=40, w=100)
    small = make_sample(1, h=20, w=30, material='Glass')
    src = write_shards(tmp_path / 'raw', [big, small])
    out = tmp_path / 'out'
    convert(src, out, resize_long_side=50, val=0, test=0)
    img = cv2.imread(str(out / 'img_dir/train/art_000.png'))
    ann = np.asarray(Image.open(out / 'ann_dir/train/art_000.png'))
    assert img.shape == (20, 50, 3) and ann.shape == (20, 50)
    assert set(np.unique(ann)) <= set(np.unique(big['mask_array']))
    expected = Image.fromarray(big['mask_array']).resize((50, 20),
                                                         Image.NEAREST)
    np.testing.assert_array_equal(ann, np.asarray(expected))
    expected_img = cv2.resize(big['image_array'][..., ::-1], (50, 20),
                              interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(img, expected_img)
    recs = {r['id']: r for r in read_csv(out / 'meta/train.csv')}
    assert recs['art_000']['transform'] == 'resize'
    assert float(recs['art_000']['scale']) == 0.5
    assert recs['art_000']['source_width'] == '100'
    assert recs['art_001']['transform'] == 'none'
    small_ann = np.asarray(Image.open(out / 'ann_dir/train/art_001.png'))
    np.testing.assert_array_equal(small_ann, small['mask_array'])


def test_tiling_keeps_parents_together(tmp_path):
    samples = [make_sample(i, h=50, w=70, material=MATERIALS[i % 3])
               for i in range(6)]
    src = write_shards(tmp_path / 'raw', samples)
    out = tmp_path / 'tiles'
    summary = convert(src, out, tile=32, tile_overlap=8, val=2, test=1)
    assert conv.tile_starts(70, 32, 8) == [0, 24, 38]
    assert conv.tile_starts(50, 32, 8) == [0, 18]
    assert conv.tile_starts(20, 32, 8) == [0]
    records = {}
    for split in conv.SPLITS:
        for rec in read_csv(out / 'meta' / f'{split}.csv'):
            records[rec['id']] = (split, rec)
    assert len(records) == 6 * 6
    assert summary['files_per_split'] == dict(train=18, val=12, test=6)
    for s in samples:
        tiles = [(k, v) for k, v in records.items()
                 if v[1]['parent_id'] == s['id']]
        assert len(tiles) == 6
        assert len({split for _, (split, _) in tiles}) == 1
        for tile_id, (split, rec) in tiles:
            tx, ty = int(rec['tile_x']), int(rec['tile_y'])
            assert tile_id == f'{s["id"]}_x{tx}_y{ty}'
            assert rec['transform'] == 'tile'
            ann = np.asarray(Image.open(out / 'ann_dir' / split /
                                        f'{tile_id}.png'))
            np.testing.assert_array_equal(
                ann, s['mask_array'][ty:ty + 32, tx:tx + 32])
            img = cv2.imread(str(out / 'img_dir' / split / f'{tile_id}.png'))
            np.testing.assert_array_equal(
                img[..., ::-1], s['image_array'][ty:ty + 32, tx:tx + 32])


def fake_rows(materials_counts):
    rows, i = [], 0
    for material, count in materials_counts:
        for _ in range(count):
            rows.append(conv.SourceRow(f'r{i:03d}', f'r{i:03d}', material,
                                       None, None, 'x.parquet', i))
            i += 1
    return rows


def test_stratified_split_reproducible():
    rows = fake_rows([('Film', 10), ('Glass', 6), ('Parchment', 4)])
    splits = conv.make_splits(rows, seed=3, num_samples=None, val=None,
                              test=None)
    by_split = {s: [r for r in rows if splits[r.out_id] == s]
                for s in conv.SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == dict(
        train=14, val=3, test=3)
    for split in conv.SPLITS:  # every split sees every material
        assert {r.material for r in by_split[split]} == set(MATERIALS)
    assert conv.make_splits(rows, 3, None, None, None) == splits
    assert conv.make_splits(list(reversed(rows)), 3, None, None,
                            None) == splits
    assert conv.make_splits(rows, 4, None, None, None) != splits
    # a material with one image can only be in one split
    rows = fake_rows([('Film', 10), ('Glass', 6), ('Wood', 1)])
    splits = conv.make_splits(rows, 0, None, 0.2, 0.2)
    assert sum(1 for v in splits.values() if v == 'val') == 3
    assert splits['r016'] == 'train'


def test_num_samples_and_val_count():
    rows = fake_rows([('Film', 30), ('Glass', 20), ('Parchment', 10)])
    splits = conv.make_splits(rows, seed=0, num_samples=50, val=10,
                              test=None)
    assert len(splits) == 50
    counts = {s: sum(1 for v in splits.values() if v == s)
              for s in conv.SPLITS}
    assert counts == dict(train=40, val=10, test=0)
    materials = {r.out_id: r.material for r in rows}
    val_materials = [materials[i] for i, s in splits.items() if s == 'val']
    assert set(val_materials) == set(MATERIALS)
    chosen = [materials[i] for i in splits]
    assert (chosen.count('Film'), chosen.count('Glass'),
            chosen.count('Parchment')) == (25, 17, 8)
    # a material with a single image is still drawn into the subset
    rows = fake_rows([('Film', 30), ('Glass', 20), ('Wood', 1)])
    splits = conv.make_splits(rows, seed=0, num_samples=5, val=2, test=None)
    materials = {r.out_id: r.material for r in rows}
    assert splits.get('r050') == 'train' and materials['r050'] == 'Wood'
    assert {materials[i] for i, s in splits.items() if s == 'val'} == {
        'Film', 'Glass'}
    with pytest.raises(conv.ConversionError, match='--num-samples must be'):
        conv.make_splits(rows, 0, 61, 10, None)
    with pytest.raises(conv.ConversionError, match='leave no training'):
        conv.make_splits(rows, 0, None, 0.5, 0.5)


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


def test_split_file_json_and_csv(tmp_path, source):
    src, samples = source
    ids = [s['id'] for s in samples]
    split_json = tmp_path / 'split.json'
    split_json.write_text(json.dumps(
        {'train': ids[:5], 'val': ids[5:7], 'test': ids[7:8]}))
    out = tmp_path / 'from_json'
    summary = convert(src, out, split_file=str(split_json))
    assert split_of(out) == {**{i: 'train' for i in ids[:5]},
                             **{i: 'val' for i in ids[5:7]},
                             ids[7]: 'test'}
    assert summary['excluded_by_split_file'] == ids[8:]
    assert json.loads((out / 'summary.json').read_text())[
        'excluded_by_split_file'] == ids[8:]

    split_csv = tmp_path / 'split.csv'
    split_csv.write_text('id,split\n' + ''.join(
        f'{i},{"val" if k % 2 else "train"}\n' for k, i in enumerate(ids)))
    out = tmp_path / 'from_csv'
    convert(src, out, split_file=str(split_csv))
    assert split_of(out) == {i: ('val' if k % 2 else 'train')
                             for k, i in enumerate(ids)}

    split_json.write_text(json.dumps({ids[0]: 'train', 'nope_1': 'val'}))
    with pytest.raises(conv.ConversionError, match=r"not in the source.*"
                       r"nope_1"):
        convert(src, tmp_path / 'x', split_file=str(split_json))
    split_json.write_text(json.dumps({ids[0]: 'holdout'}))
    with pytest.raises(conv.ConversionError,
                       match=r"id 'art_000' has split 'holdout'"):
        convert(src, tmp_path / 'x', split_file=str(split_json))
    assert not (tmp_path / 'x').exists()


def _bad_samples(kind):
    samples = samples_for([('Film', 3), ('Glass', 2)])
    bad = samples[2]
    if kind == 'size':
        bad['annotation']['bytes'] = png_bytes(
            np.zeros((19, 30), np.uint8), 'L')
        reason = 'annotation is 30x19 but the image is 30x20'
    elif kind == 'values':
        mask = bad['mask_array'].copy()
        mask[0, 0], mask[1, 1] = 16, 200
        bad['annotation']['bytes'] = png_bytes(mask, 'L')
        reason = r'annotation values \[16, 200\] are outside'
    elif kind == 'values16':
        mask = bad['mask_array'].astype(np.uint16)
        mask[0, 0] = 300
        bad['annotation']['bytes'] = cv2.imencode('.png', mask)[1].tobytes()
        reason = r'annotation values \[300\] are outside'
    elif kind == 'undecodable':
        bad['image']['bytes'] = b'not a png at all'
        reason = 'undecodable image'
    elif kind == 'truncated':
        data = bad['image']['bytes']
        bad['image']['bytes'] = data[:len(data) // 2]
        reason = 'undecodable image'
    elif kind == 'truncated_mask':
        data = bad['annotation']['bytes']
        bad['annotation']['bytes'] = data[:len(data) // 2]
        reason = 'undecodable annotation'
    elif kind == 'rgb_mask':
        bad['annotation']['bytes'] = png_bytes(bad['image_array'])
        reason = "annotation has mode 'RGB'"
    elif kind == 'no_bytes':
        bad['image']['bytes'] = None
        reason = 'image holds no PNG bytes'
    return samples, bad['id'], reason


@pytest.mark.parametrize('kind', [
    'size', 'values', 'values16', 'undecodable', 'truncated',
    'truncated_mask', 'rgb_mask', 'no_bytes'])
def test_bad_rows_stop_or_skip(tmp_path, kind):
    samples, bad_id, reason = _bad_samples(kind)
    src = write_shards(tmp_path / 'raw', samples, per_shard=2)
    out = tmp_path / 'out'
    with pytest.raises(conv.BadRowError,
                       match=rf"id='{bad_id}' in data/train-00001\.parquet: "
                       rf'{reason}'):
        convert(src, out, resize_long_side=0)
    assert not out.exists()
    assert not (tmp_path / 'out.partial').exists()

    summary = convert(src, out, resize_long_side=0, skip_bad=True)
    assert [s['id'] for s in summary['skipped']] == [bad_id]
    assert summary['skipped'][0]['shard'] == 'data/train-00001.parquet'
    written = split_of(out)
    assert sorted(written) == sorted(s['id'] for s in samples
                                     if s['id'] != bad_id)
    assert json.loads((out / 'summary.json').read_text())['skipped'] == \
        summary['skipped']


def test_max_pixels_is_explicit(tmp_path, source):
    src, samples = source
    with pytest.raises(conv.BadRowError,
                       match=r"id='art_000'.*image is 30x20 = 600 px, above "
                       r'max_pixels=599'):
        convert(src, tmp_path / 'out', max_pixels=599)


def test_force_partial_and_idempotency(tmp_path, source):
    src, _ = source
    out = tmp_path / 'artefact'
    out.mkdir()
    (out / 'user_file.txt').write_text('mine')
    with pytest.raises(conv.ConversionError,
                       match='is not empty; pass --force'):
        convert(src, out)
    assert (out / 'user_file.txt').read_text() == 'mine'
    # --force replaces only a folder the converter wrote: the user's files stay
    with pytest.raises(conv.ConversionError,
                       match=r'--force replaces only a folder this converter wrote .*'
                             r'it holds user_file.txt'):
        convert(src, out, force=True)
    assert (out / 'user_file.txt').read_text() == 'mine'
    (out / 'user_file.txt').unlink()

    # a leftover of an interrupted run (with our marker) is cleaned up
    partial = tmp_path / 'artefact.partial'
    partial.mkdir()
    (partial / conv.PARTIAL_MARKER).write_text('x')
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
    with pytest.raises(conv.ConversionError,
                       match='was not written by this converter'):
        convert(src, out, force=True)
    assert (partial / 'theirs.txt').exists()
    assert tree_hashes(out) == first


def test_a_corrupt_page_names_its_row_group_or_its_rows_are_skipped(tmp_path):
    samples = [make_sample(i, material=MATERIALS[i % 3]) for i in range(8)]
    src = write_shards(tmp_path / 'raw', samples)  # 2 shards of 4 rows, row groups of 2
    shard = sorted((src / 'data').glob('*.parquet'))[0]
    offset = pq.ParquetFile(shard).metadata.row_group(1).column(1).data_page_offset
    data = bytearray(shard.read_bytes())
    data[offset:offset + 16] = b'\xff' * 16  # the image page header of rows 2-3
    shard.write_bytes(bytes(data))
    with pytest.raises(conv.ConversionError,
                       match=rf'{re.escape(str(shard))} row group 1 \(rows 2-3\) cannot be '
                             r'read: .*pass --skip-bad'):
        convert(src, tmp_path / 'out', val=2, test=1)
    assert not (tmp_path / 'out').exists()
    summary = convert(src, tmp_path / 'out', val=2, test=1, skip_bad=True)
    assert {s['id'] for s in summary['skipped']} == {samples[2]['id'], samples[3]['id']}
    assert all(s['reason'].startswith('row group 1 cannot be read') and
               s['shard'] == 'data/train-00000.parquet' for s in summary['skipped'])
    assert sum(summary['images_per_split'].values()) == 6


def test_overlapping_tiles_count_each_source_pixel_once(tmp_path):
    samples = [make_sample(i, h=50, w=70, material=MATERIALS[i % 3]) for i in range(6)]
    src = write_shards(tmp_path / 'raw', samples)
    plain = convert(src, tmp_path / 'plain', val=2, test=1)
    tiled = convert(src, tmp_path / 'tiles', tile=32, tile_overlap=8, val=2, test=1)
    assert tiled['class_pixels'] == plain['class_pixels']
    assert (json.loads((tmp_path / 'tiles' / 'class_weights.json').read_text()) ==
            json.loads((tmp_path / 'plain' / 'class_weights.json').read_text()))


def test_out_of_the_working_folder_is_refused_before_any_work(tmp_path, source, monkeypatch):
    src, _ = source
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(conv, 'resolve_source', lambda *a, **k: pytest.fail('work started'))
    for out in ('.', '..'):
        with pytest.raises(conv.ConversionError,
                           match=rf'--out {re.escape(out)} is the current folder'):
            convert(src, out, force=True)
    assert src.is_dir()


def test_source_errors_and_hub(tmp_path, source, monkeypatch):
    src, _ = source
    (tmp_path / 'empty').mkdir()
    with pytest.raises(conv.ConversionError, match='no \\*.parquet files'):
        convert(tmp_path / 'empty', tmp_path / 'o')
    with pytest.raises(conv.ConversionError,
                       match="'./nowhere' is neither an existing folder"):
        convert('./nowhere', tmp_path / 'o')
    with pytest.raises(conv.ConversionError, match='replaces only a folder this converter'):
        convert(src, src.parent, force=True)
    assert (src / 'data' / 'train-00000.parquet').exists()

    import huggingface_hub
    calls = []

    def fake_download(repo_id, repo_type, local_dir, allow_patterns):
        calls.append((repo_id, repo_type))
        target = Path(local_dir)
        for p in sorted(src.rglob('*.parquet')):
            (target / p.parent.relative_to(src)).mkdir(parents=True,
                                                       exist_ok=True)
            (target / p.relative_to(src)).write_bytes(p.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, 'snapshot_download', fake_download)
    out = tmp_path / 'hub_out'
    summary = convert(conv.HUB_REPO_ID, out,
                      download_dir=str(tmp_path / 'dl'))
    assert calls == [(conv.HUB_REPO_ID, 'dataset')]
    assert sum(summary['images_per_split'].values()) == 10

    def offline(**kwargs):
        raise OSError('network unreachable')

    monkeypatch.setattr(huggingface_hub, 'snapshot_download', offline)
    with pytest.raises(conv.ConversionError,
                       match=r"could not download hub dataset "
                       r"'danielaivanova/damaged-media'.*network unreachable"):
        convert(conv.HUB_REPO_ID, tmp_path / 'o2',
                download_dir=str(tmp_path / 'dl2'))


def test_bad_schema_and_duplicate_ids(tmp_path):
    folder = tmp_path / 'raw'
    folder.mkdir()
    pq.write_table(pa.table({'id': ['a'], 'material': ['Film']}),
                   folder / 'x.parquet')
    with pytest.raises(conv.ConversionError,
                       match=r"x\.parquet lacks column\(s\) \['image', "
                       r"'annotation'\]"):
        convert(folder, tmp_path / 'o')
    sample = make_sample(0)
    src = write_shards(tmp_path / 'dup', [sample, dict(sample)])
    with pytest.raises(conv.ConversionError,
                       match="duplicate id 'art_000'"):
        convert(src, tmp_path / 'o')
    assert osp.basename(conv.DEFAULT_OUT_DIR) == 'artefact'


def test_histogram_in_blocks_matches_bincount():
    mask = np.random.RandomState(0).randint(0, 256, (37, 23)).astype(
        np.uint8)
    expected = np.bincount(mask.ravel(), minlength=256)
    for block in (1, 23, 50, 1 << 22):
        np.testing.assert_array_equal(conv.histogram(mask, block), expected)


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


def test_palette_mask_keeps_indices_and_resize_then_tile(tmp_path):
    sample = make_sample(0, h=40, w=100)
    pal = Image.fromarray(sample['mask_array'], 'L').convert('P')
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 7)])
    buf = io.BytesIO()
    pal.save(buf, format='PNG')
    sample['annotation']['bytes'] = buf.getvalue()
    assert Image.open(io.BytesIO(buf.getvalue())).mode == 'P'
    src = write_shards(tmp_path / 'raw', [sample])
    out = tmp_path / 'out'
    convert(src, out, resize_long_side=50, tile=32, val=0, test=0)
    recs = read_csv(out / 'meta' / 'train.csv')
    assert [(r['tile_x'], r['tile_y']) for r in recs] == [
        ('0', '0'), ('18', '0')]
    resized = np.asarray(Image.fromarray(sample['mask_array']).resize(
        (50, 20), Image.NEAREST))
    for rec in recs:
        assert rec['transform'] == 'resize+tile' and rec['scale'] == '0.5'
        tx = int(rec['tile_x'])
        ann = np.asarray(Image.open(out / 'ann_dir/train' /
                                    f'{rec["id"]}.png'))
        np.testing.assert_array_equal(ann, resized[:, tx:tx + 32])


def test_cli_amount_parsing():
    assert conv.parse_amount('0.2') == 0.2 and conv.parse_amount('10') == 10
    assert isinstance(conv.parse_amount('10'), int)
    with pytest.raises(argparse.ArgumentTypeError, match='must be whole'):
        conv.parse_amount('2.5')
    with pytest.raises(argparse.ArgumentTypeError, match='fraction'):
        conv.parse_amount('ten')
