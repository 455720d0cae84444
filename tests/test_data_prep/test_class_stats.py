"""Class statistics: the blockwise histogram, and each source pixel counted once however
tiles overlap."""
import json

import numpy as np

from artseg_mm.data_prep.class_stats import histogram
from parquet_helpers import MATERIALS, convert, make_sample, write_shards


def test_overlapping_tiles_count_each_source_pixel_once(tmp_path):
    samples = [make_sample(i, h=50, w=70, material=MATERIALS[i % 3]) for i in range(6)]
    src = write_shards(tmp_path / 'raw', samples)
    plain = convert(src, tmp_path / 'plain', val=2, test=1)
    tiled = convert(src, tmp_path / 'tiles', tile=32, tile_overlap=8, val=2, test=1)
    assert tiled['class_pixels'] == plain['class_pixels']
    assert (json.loads((tmp_path / 'tiles' / 'class_weights.json').read_text()) ==
            json.loads((tmp_path / 'plain' / 'class_weights.json').read_text()))


def test_histogram_in_blocks_matches_bincount():
    mask = np.random.RandomState(0).randint(0, 256, (37, 23)).astype(
        np.uint8)
    expected = np.bincount(mask.ravel(), minlength=256)
    for block in (1, 23, 50, 1 << 22):
        np.testing.assert_array_equal(histogram(mask, block), expected)
