"""The 16-class configs: 16 output channels, one training step on the demo data,
and a clear stop when the loss's class-weights file is missing or for another label set."""
import json
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

import artseg_mm  # noqa: F401
from artseg_mm.datasets.artefact_classes import BINARY_CLASSES, FULL_CLASSES
from conftest import REPO
from mmseg.registry import DATASETS, MODELS

MODELS_ = ['convnext_tiny_upernet', 'swin_tiny_upernet', 'coat_lite_small_upernet',
           'resnet50_unet']


def load(name, data_root):
    cfg = Config.fromfile(REPO / 'configs' / 'demo' / f'{name}_demo_full.py')
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.model.decode_head.loss_decode.class_weight = str(data_root / 'class_weights.json')
    init_default_scope('mmseg')
    return cfg


@pytest.mark.parametrize('name', MODELS_)
def test_real_full_config_is_the_binary_one_with_16_classes(name):
    full = Config.fromfile(REPO / 'configs' / f'{name}_artefact_full.py')
    binary = Config.fromfile(REPO / 'configs' / f'{name}_artefact.py')
    assert full.model.decode_head.num_classes == len(FULL_CLASSES) == 16
    assert binary.model.decode_head.num_classes == len(BINARY_CLASSES)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert full[loader].dataset.label_mode == 'full'
    loss = full.model.decode_head.loss_decode
    assert loss.class_weight == 'data/artefact/class_weights.json'
    assert tuple(loss.classes) == FULL_CLASSES
    assert full.model.backbone == binary.model.backbone


@pytest.mark.parametrize('name', MODELS_)
def test_full_demo_config_trains_one_step_with_16_channels(name, tiny_demo_root):
    cfg = load(name, tiny_demo_root)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.METAINFO['classes'] == FULL_CLASSES
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    weights = json.loads((tiny_demo_root / 'class_weights.json').read_text())
    assert model.decode_head.loss_decode.class_weight == weights['class_weights']
    assert model.decode_head.out_channels == 16
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    model.train()
    logits = model._forward(data['inputs'], data['data_samples'])
    assert logits.shape[1] == 16
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss) and loss > 0
    before = model.decode_head.conv_seg.weight.detach().clone()
    loss.backward()
    optim.step()
    assert not torch.equal(before, model.decode_head.conv_seg.weight)


def test_missing_class_weights_file_stops_clearly(tiny_demo_root, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(tiny_demo_root, root)
    (root / 'class_weights.json').unlink()
    cfg = load('convnext_tiny_upernet', root)
    with pytest.raises(FileNotFoundError,
                       match=r"class_weight file '.*class_weights.json' does not exist.*"
                             r'make_demo_data.py'):
        MODELS.build(cfg.model)


def test_binary_class_weights_in_a_16_class_config_stop_clearly(tiny_demo_root):
    cfg = load('resnet50_unet', tiny_demo_root)
    cfg.model.decode_head.loss_decode.class_weight = str(
        tiny_demo_root / 'class_weights_binary.json')
    with pytest.raises(ValueError, match=r"was computed for the classes \['Clean', 'Damage'\] "
                                         r'\(2\), but this loss is for .*\(16\)'):
        MODELS.build(cfg.model)


def test_unnamed_weights_of_the_wrong_length_stop_clearly(tmp_path):
    from artseg_mm.models.losses import load_class_weight
    path = tmp_path / 'w.json'
    path.write_text(json.dumps([1.0, 2.0]))
    with pytest.raises(ValueError, match='has 2 weights, but this loss is for 16 classes'):
        load_class_weight(str(path), FULL_CLASSES)
    assert load_class_weight(str(path), BINARY_CLASSES) == [1.0, 2.0]
