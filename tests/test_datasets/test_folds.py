"""Leave-one-material-out folds made from the demo data's metadata."""
import pytest

from artseg_mm.datasets.demo_generator import MATERIALS
from artseg_mm.datasets.folds import make_folds, read_groups


def test_each_material_is_held_out_once_and_no_image_is_in_two_splits(tiny_demo_root):
    groups, parents = read_groups(tiny_demo_root, 'material')
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
