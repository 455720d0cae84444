"""Resizing huge rows (INTER_AREA image, nearest mask) and cutting them into tiles that keep
the parent's split."""
import cv2
import numpy as np
from PIL import Image

from artseg_mm.data_prep.resize_and_tile import tile_starts
from artseg_mm.datasets.layout import SPLITS
from parquet_helpers import MATERIALS, convert, make_sample, read_csv, write_shards


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
    assert tile_starts(70, 32, 8) == [0, 24, 38]
    assert tile_starts(50, 32, 8) == [0, 18]
    assert tile_starts(20, 32, 8) == [0]
    records = {}
    for split in SPLITS:
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
