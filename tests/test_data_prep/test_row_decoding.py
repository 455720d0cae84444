"""Decoding and checking one row: every kind of bad row stops the conversion naming the row
and its shard (or is skipped with --skip-bad), the explicit pixel limit, palette masks."""
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from artseg_mm.data_prep.errors import BadRowError
from parquet_helpers import (convert, make_sample, png_bytes, read_csv, samples_for,  # noqa: F401
                             source, split_of, write_shards)


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
    with pytest.raises(BadRowError,
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
    with pytest.raises(BadRowError,
                       match=r"id='art_000'.*image is 30x20 = 600 px, above "
                       r'max_pixels=599'):
        convert(src, tmp_path / 'out', max_pixels=599)


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
