"""training_data_summary: images per split and train class pixels as the run's
config reads the data, against the demo generator's own counts."""
import json

import pytest
from mmengine.config import Config

import artseg_mm  # noqa: F401
from artseg_mm.datasets.data_summary import training_data_summary
from conftest import REPO

DEMO_CONFIG = REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo.py'


def demo_config(data_root, label_mode='binary'):
    cfg = Config.fromfile(str(DEMO_CONFIG))
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(data_root)
        cfg[f'{split}_dataloader'].dataset.label_mode = label_mode
    return cfg


@pytest.mark.parametrize('label_mode, record', [('binary', 'class_weights_binary.json'),
                                                ('full', 'class_weights.json')])
def test_train_pixels_are_the_generators_counts(tiny_demo_root, label_mode, record):
    summary = training_data_summary(demo_config(tiny_demo_root, label_mode))
    written = json.loads((tiny_demo_root / record).read_text())
    assert list(summary['train_class_pixels']) == written['classes']
    assert list(summary['train_class_pixels'].values()) == written['pixel_counts']
    total = sum(written['pixel_counts'])
    assert summary['train_class_share'] == pytest.approx(
        {c: n / total for c, n in zip(written['classes'], written['pixel_counts'])})
    images = {s: len(list((tiny_demo_root / 'img_dir' / s).glob('*.png')))
              for s in ('train', 'val')}
    assert {s: d['images'] for s, d in summary['splits'].items()} == dict(
        train=images['train'], val=images['val'], test=images['val'])
    assert summary['records']['meta.json'] == json.loads(
        (tiny_demo_root / 'meta.json').read_text())
    assert summary['found'] is True and summary['data_root'] == str(tiny_demo_root)


def test_missing_data_root_is_reported_not_read(tmp_path):
    summary = training_data_summary(demo_config(tmp_path / 'absent'))
    assert summary['found'] is False
    assert summary['note'].startswith(f"data root {tmp_path / 'absent'} not found")
    assert summary['splits']['train']['data_prefix']['img_path'] == 'img_dir/train'
    assert 'images' not in summary['splits']['train']
