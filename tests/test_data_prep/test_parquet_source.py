"""Reading the parquet source: shards of a folder or the hub, their schema and ids, and a
corrupt page named by its shard and row group (or its rows skipped)."""
import os.path as osp
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artseg_mm.data_prep.converter import DEFAULT_OUT_DIR
from artseg_mm.data_prep.errors import ConversionError
from artseg_mm.data_prep.parquet_source import HUB_REPO_ID
from parquet_helpers import MATERIALS, convert, make_sample, source, write_shards  # noqa: F401


def test_a_corrupt_page_names_its_row_group_or_its_rows_are_skipped(tmp_path):
    samples = [make_sample(i, material=MATERIALS[i % 3]) for i in range(8)]
    src = write_shards(tmp_path / 'raw', samples)  # 2 shards of 4 rows, row groups of 2
    shard = sorted((src / 'data').glob('*.parquet'))[0]
    offset = pq.ParquetFile(shard).metadata.row_group(1).column(1).data_page_offset
    data = bytearray(shard.read_bytes())
    data[offset:offset + 16] = b'\xff' * 16  # the image page header of rows 2-3
    shard.write_bytes(bytes(data))
    with pytest.raises(ConversionError,
                       match=rf'{re.escape(str(shard))} row group 1 \(rows 2-3\) cannot be '
                             r'read: .*pass --skip-bad'):
        convert(src, tmp_path / 'out', val=2, test=1)
    assert not (tmp_path / 'out').exists()
    summary = convert(src, tmp_path / 'out', val=2, test=1, skip_bad=True)
    assert {s['id'] for s in summary['skipped']} == {samples[2]['id'], samples[3]['id']}
    assert all(s['reason'].startswith('row group 1 cannot be read') and
               s['shard'] == 'data/train-00000.parquet' for s in summary['skipped'])
    assert sum(summary['images_per_split'].values()) == 6


def test_source_errors_and_hub(tmp_path, source, monkeypatch):
    src, _ = source
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ConversionError, match='no \\*.parquet files'):
        convert(tmp_path / 'empty', tmp_path / 'o')
    with pytest.raises(ConversionError,
                       match="'./nowhere' is neither an existing folder"):
        convert('./nowhere', tmp_path / 'o')
    with pytest.raises(ConversionError, match='replaces only a folder this converter'):
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
    summary = convert(HUB_REPO_ID, out,
                      download_dir=str(tmp_path / 'dl'))
    assert calls == [(HUB_REPO_ID, 'dataset')]
    assert sum(summary['images_per_split'].values()) == 10

    def offline(**kwargs):
        raise OSError('network unreachable')

    monkeypatch.setattr(huggingface_hub, 'snapshot_download', offline)
    with pytest.raises(ConversionError,
                       match=r"could not download hub dataset "
                       r"'danielaivanova/damaged-media'.*network unreachable"):
        convert(HUB_REPO_ID, tmp_path / 'o2',
                download_dir=str(tmp_path / 'dl2'))


def test_bad_schema_and_duplicate_ids(tmp_path):
    folder = tmp_path / 'raw'
    folder.mkdir()
    pq.write_table(pa.table({'id': ['a'], 'material': ['Film']}),
                   folder / 'x.parquet')
    with pytest.raises(ConversionError,
                       match=r"x\.parquet lacks column\(s\) \['image', "
                       r"'annotation'\]"):
        convert(folder, tmp_path / 'o')
    sample = make_sample(0)
    src = write_shards(tmp_path / 'dup', [sample, dict(sample)])
    with pytest.raises(ConversionError,
                       match="duplicate id 'art_000'"):
        convert(src, tmp_path / 'o')
    assert osp.basename(DEFAULT_OUT_DIR) == 'artefact'
