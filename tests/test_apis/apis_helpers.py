"""A tiny trained-model work dir as tools/train.py leaves one: the config dump
of the demo ConvNeXt config (shrunk to ConvNeXt-atto and a 16-channel head)
and a ``best_*.pth`` with random, seeded weights and mmengine's meta."""
from pathlib import Path

import torch

from conftest import REPO

DEMO_CONFIG = REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo.py'
SHRINK = {
    'model.backbone.model_name': 'convnext_atto',
    'model.backbone.drop_path_rate': 0.0,
    'model.decode_head.channels': 16,
    'model.decode_head.in_channels': None,  # taken from the backbone
    'model.test_cfg.crop_size': (64, 64),
    'model.test_cfg.stride': (40, 40),
    'model.test_cfg.batch_size': 3,
}


def write_work_dir(root: Path, seed: int = 0, cfg_options: dict = None) -> Path:
    """``root/tiny_convnext`` with ``tiny_convnext.py`` and ``best_mIoU_epoch_1.pth``
    (``cfg_options`` merged into the config after the shrinking)."""
    from mmengine import Config

    from artseg_mm.apis import build_segmentor
    from artseg_mm.datasets.artefact_classes import BINARY_CLASSES, BINARY_PALETTE

    work_dir = root / 'tiny_convnext'
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg = Config.fromfile(str(DEMO_CONFIG))
    cfg.merge_from_dict(SHRINK)
    cfg.merge_from_dict(cfg_options or {})
    cfg.dump(str(work_dir / 'tiny_convnext.py'))
    torch.manual_seed(seed)
    model = build_segmentor(cfg)
    meta = dict(dataset_meta=dict(classes=list(BINARY_CLASSES), palette=BINARY_PALETTE,
                                  label_mode='binary'))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(meta, epoch=1, iter=2)),
               work_dir / 'best_mIoU_epoch_1.pth')
    return work_dir


def write_mismatched_checkpoint(work_dir: Path, path: Path) -> str:
    """A copy of the work dir's checkpoint with one head key renamed; returns
    the original key name (missing from the copy)."""
    state = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)
    key = next(k for k in state['state_dict'] if k.startswith('decode_head.conv_seg'))
    state['state_dict']['decode_head.renamed_weight'] = state['state_dict'].pop(key)
    torch.save(state, path)
    return key
