"""Splits: the seeded material-stratified draw, --num-samples with counts, split files,
and the command line's split sizes."""
import argparse
import json

import pytest

from artseg_mm.data_prep.errors import ConversionError
from artseg_mm.data_prep.parquet_source import SourceRow
from artseg_mm.data_prep.splits import make_splits, parse_amount
from artseg_mm.datasets.layout import SPLITS
from parquet_helpers import MATERIALS, convert, source, split_of  # noqa: F401


def fake_rows(materials_counts):
    rows, i = [], 0
    for material, count in materials_counts:
        for _ in range(count):
            rows.append(SourceRow(f'r{i:03d}', f'r{i:03d}', material,
                                       None, None, 'x.parquet', i))
            i += 1
    return rows


def test_stratified_split_reproducible():
    rows = fake_rows([('Film', 10), ('Glass', 6), ('Parchment', 4)])
    splits = make_splits(rows, seed=3, num_samples=None, val=None,
                              test=None)
    by_split = {s: [r for r in rows if splits[r.out_id] == s]
                for s in SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == dict(
        train=14, val=3, test=3)
    for split in SPLITS:  # every split sees every material
        assert {r.material for r in by_split[split]} == set(MATERIALS)
    assert make_splits(rows, 3, None, None, None) == splits
    assert make_splits(list(reversed(rows)), 3, None, None,
                            None) == splits
    assert make_splits(rows, 4, None, None, None) != splits
    # a material with one image can only be in one split
    rows = fake_rows([('Film', 10), ('Glass', 6), ('Wood', 1)])
    splits = make_splits(rows, 0, None, 0.2, 0.2)
    assert sum(1 for v in splits.values() if v == 'val') == 3
    assert splits['r016'] == 'train'


def test_num_samples_and_val_count():
    rows = fake_rows([('Film', 30), ('Glass', 20), ('Parchment', 10)])
    splits = make_splits(rows, seed=0, num_samples=50, val=10,
                              test=None)
    assert len(splits) == 50
    counts = {s: sum(1 for v in splits.values() if v == s)
              for s in SPLITS}
    assert counts == dict(train=40, val=10, test=0)
    materials = {r.out_id: r.material for r in rows}
    val_materials = [materials[i] for i, s in splits.items() if s == 'val']
    assert set(val_materials) == set(MATERIALS)
    chosen = [materials[i] for i in splits]
    assert (chosen.count('Film'), chosen.count('Glass'),
            chosen.count('Parchment')) == (25, 17, 8)
    # a material with a single image is still drawn into the subset
    rows = fake_rows([('Film', 30), ('Glass', 20), ('Wood', 1)])
    splits = make_splits(rows, seed=0, num_samples=5, val=2, test=None)
    materials = {r.out_id: r.material for r in rows}
    assert splits.get('r050') == 'train' and materials['r050'] == 'Wood'
    assert {materials[i] for i, s in splits.items() if s == 'val'} == {
        'Film', 'Glass'}
    with pytest.raises(ConversionError, match='--num-samples must be'):
        make_splits(rows, 0, 61, 10, None)
    with pytest.raises(ConversionError, match='leave no training'):
        make_splits(rows, 0, None, 0.5, 0.5)


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
    with pytest.raises(ConversionError, match=r"not in the source.*"
                       r"nope_1"):
        convert(src, tmp_path / 'x', split_file=str(split_json))
    split_json.write_text(json.dumps({ids[0]: 'holdout'}))
    with pytest.raises(ConversionError,
                       match=r"id 'art_000' has split 'holdout'"):
        convert(src, tmp_path / 'x', split_file=str(split_json))
    assert not (tmp_path / 'x').exists()


def test_cli_amount_parsing():
    assert parse_amount('0.2') == 0.2 and parse_amount('10') == 10
    assert isinstance(parse_amount('10'), int)
    with pytest.raises(argparse.ArgumentTypeError, match='must be whole'):
        parse_amount('2.5')
    with pytest.raises(argparse.ArgumentTypeError, match='fraction'):
        parse_amount('ten')
