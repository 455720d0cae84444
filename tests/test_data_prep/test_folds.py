"""Leave-one-material-out folds made from the demo data's metadata."""
import json

import pytest
from mmengine.registry import init_default_scope

import artseg_mm  # noqa: F401  (registers ARTeFACTDataset)
from artseg_mm.data_prep.demo_generator import MATERIALS
from artseg_mm.data_prep.folds import fold_of_split_file, make_folds, read_groups, write_folds


def test_each_material_is_held_out_once_and_no_image_is_in_two_splits(tiny_demo_root):
    groups, parents, _ = read_groups(tiny_demo_root, 'material')
    folds = make_folds(groups, parents, val_fraction=0.2, seed=0)
    held = [fold['holdout'] for fold in folds]
    assert sorted(held) == sorted(set(groups.values()))
    assert len(held) == len(set(held)) and set(held) <= set(MATERIALS)
    for fold in folds:
        splits = fold['splits']
        ids = splits['train'] + splits['val'] + splits['test']
        assert len(ids) == len(set(ids)) == len(groups)  # each image in exactly one split
        assert {groups[i] for i in splits['test']} == {fold['holdout']}
        assert fold['holdout'] not in {groups[i] for i in splits['train'] + splits['val']}
        assert splits['val'] and splits['train']


def test_tiles_of_one_source_stay_together():
    groups = {f't{i}': ('paper' if i < 6 else 'canvas') for i in range(12)}
    parents = {f't{i}': f'src{i // 2}' for i in range(12)}
    for fold in make_folds(groups, parents, val_fraction=0.34):
        where = {}
        for split, ids in fold['splits'].items():
            for image in ids:
                where.setdefault(parents[image], set()).add(split)
        assert all(len(s) == 1 for s in where.values())


def test_bad_inputs_are_named(tiny_demo_root, tmp_path):
    with pytest.raises(ValueError, match="holdout key must be one of"):
        read_groups(tiny_demo_root, 'colour')
    with pytest.raises(FileNotFoundError, match='no <split>.csv sidecar'):
        read_groups(tmp_path, 'material')
    with pytest.raises(ValueError, match='at least 2 groups'):
        make_folds({'a': 'paper'}, {'a': 'a'})


@pytest.fixture(scope='module')
def written_folds(tiny_demo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('folds')
    source = read_groups(tiny_demo_root, 'material')
    write_folds(out, 'material', make_folds(source.groups, source.parents, 0.3), source.folders)
    return out


def test_split_files_list_every_image_once_by_its_split_folder(tiny_demo_root, written_folds):
    index = json.loads((written_folds / 'folds.json').read_text())
    groups, _, folders = read_groups(tiny_demo_root, 'material')
    assert index['holdout_key'] == 'material'
    assert sorted(f['holdout'] for f in index['folds']) == sorted(set(groups.values()))
    for entry in index['folds']:
        lines = {split: (written_folds / entry['name'] / f'{split}.txt').read_text().split()
                 for split in ('train', 'val', 'test')}
        listed = [line for split_lines in lines.values() for line in split_lines]
        assert sorted(listed) == sorted(f'{folders[i]}/{i}' for i in groups)
        assert {groups[line.split('/')[1]] for line in lines['test']} == {entry['holdout']}
        assert len(lines['test']) == entry['test']
        for line in listed:
            assert (tiny_demo_root / 'img_dir' / f'{line}.png').is_file()
            assert (tiny_demo_root / 'ann_dir' / f'{line}.png').is_file()


def test_dataset_reads_a_fold_split_file_with_its_metadata(tiny_demo_root, written_folds):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    entry = json.loads((written_folds / 'folds.json').read_text())['folds'][0]
    split_file = written_folds / entry['name'] / 'test.txt'
    dataset = DATASETS.build(dict(
        type='ARTeFACTDataset', data_root=str(tiny_demo_root), ann_file=str(split_file),
        data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'), pipeline=[]))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [info['sample_id'] for info in infos] == split_file.read_text().split()
    assert {info['material'] for info in infos} == {entry['holdout']}
    assert all(info['content'] for info in infos)
    assert fold_of_split_file(str(split_file)) == dict(
        key='material', group=entry['holdout'], name=entry['name'])


def test_a_file_outside_a_fold_protocol_is_named(tmp_path):
    stray = tmp_path / 'some' / 'test.txt'
    stray.parent.mkdir()
    stray.write_text('val/demo_0001\n')
    with pytest.raises(FileNotFoundError, match='not a split file of tools/misc/make_folds.py'):
        fold_of_split_file(str(stray))
    (tmp_path / 'folds.json').write_text(json.dumps(dict(holdout_key='material', folds=[])))
    with pytest.raises(ValueError, match="lists no fold 'some'"):
        fold_of_split_file(str(stray))


def test_two_groups_with_one_fold_name_are_refused(tmp_path):
    folds = [dict(holdout=g, splits=dict(train=['a'], val=['b'], test=['c']))
             for g in ('oil paint', 'oil-paint')]
    with pytest.raises(ValueError, match="both give the fold name 'material_oil_paint'"):
        write_folds(tmp_path, 'material', folds, dict(a='train', b='train', c='val'))
