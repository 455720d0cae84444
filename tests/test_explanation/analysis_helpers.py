"""Tiny segmentors (config + checkpoint + image in a tmp dir) for the analysis tools.

A helper module, not a conftest.py: tests elsewhere import the top-level
``tests/conftest.py`` as ``conftest``, and a second module of that name here
could shadow it.

Small members of each encoder family keep the tests fast on 2 CPU cores:
ConvNeXt-atto, a narrow Swin-T (embed_dim 24; the same window attention code as
swin_tiny) and CoaT-Lite-tiny (the same factorized attention as
coat_lite_small). Weights are random (seeded); no download.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PY, REPO, run_tool

IMG_H, IMG_W = 64, 96

BACKBONES = {
    'convnext': dict(model_name='convnext_atto'),
    'swin': dict(model_name='swin_tiny_patch4_window7_224', embed_dim=24,
                 depths=(2, 2, 2, 2)),
    # CoaT is built for one size: the wrapper pads smaller inputs to it.
    'coat': dict(model_name='coat_lite_tiny', img_size=(64, 96)),
    'resnet': dict(model_name='resnet18', out_indices=(1, 2, 3, 4)),
}


class AnalysisTool:
    """``tools/analysis_tools/<name>.py`` run as a command: ``main(argv)`` returns
    its exit code and echoes its output to this process's stdout and stderr
    (where pytest's ``capsys`` reads it)."""

    def __init__(self, name: str):
        self.path = REPO / 'tools' / 'analysis_tools' / f'{name}.py'

    def main(self, argv) -> int:
        proc = run_tool([PY, self.path, *map(str, argv)], check=False)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode


def load_tool(name: str) -> AnalysisTool:
    """The analysis tool ``name`` as a command (see :class:`AnalysisTool`)."""
    return AnalysisTool(name)


def build_backbone(kind: str):
    import artseg_mm  # noqa: F401
    from artseg_mm.models.backbones.timm_features import TimmFeatureBackbone
    return TimmFeatureBackbone(pretrained=False, **BACKBONES[kind])


# Both segmentor classes users have: mmseg's own and the project's subclass.
SEGMENTORS = {'convnext': 'EncoderDecoder', 'swin': 'ArtSegEncoderDecoder',
              'coat': 'ArtSegEncoderDecoder', 'resnet': 'EncoderDecoder'}


def tiny_config(kind: str) -> dict:
    """A config dict as users write: (ArtSeg)EncoderDecoder + TimmFeatureBackbone +
    UPerFeatureHead."""
    import artseg_mm  # noqa: F401
    from artseg_mm.datasets.artefact_classes import BINARY_CLASSES
    backbone = dict(type='TimmFeatureBackbone', pretrained=False, **BACKBONES[kind])
    channels = build_backbone(kind).out_channels  # derived, not written down
    return dict(
        default_scope='mmseg',
        custom_imports=dict(imports=['artseg_mm'], allow_failed_imports=False),
        model=dict(
            type=SEGMENTORS[kind],
            data_preprocessor=dict(type='SegDataPreProcessor',
                                   mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                                   pad_val=0, seg_pad_val=255),
            backbone=backbone,
            decode_head=dict(type='UPerFeatureHead', in_channels=channels, in_index=[0, 1, 2, 3],
                             pool_scales=(1, 2, 3, 6), channels=16, dropout_ratio=0.1,
                             num_classes=len(BINARY_CLASSES),
                             norm_cfg=dict(type='BN', requires_grad=True),
                             align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
    )


def write_tiny_model(root: Path, kind: str, seed: int = 0) -> dict:
    """Config .py, checkpoint .pth (weights_only-loadable) and a 64x96 image."""
    import cv2
    from mmengine import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from artseg_mm.datasets.artefact_classes import BINARY_CLASSES, BINARY_PALETTE

    root.mkdir(parents=True, exist_ok=True)
    cfg = Config(tiny_config(kind))
    cfg_path = root / f'{kind}_tiny.py'
    cfg.dump(str(cfg_path))
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    ckpt_path = root / f'{kind}_tiny.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=list(BINARY_CLASSES),
                                                palette=BINARY_PALETTE))), ckpt_path)
    rng = np.random.default_rng(seed)
    img = (rng.random((IMG_H, IMG_W, 3)) * 255).astype(np.uint8)
    img[16:40, 24:64] = (250, 250, 240)  # a bright patch: something to segment
    img_path = root / f'{kind}_image.png'
    cv2.imwrite(str(img_path), img)
    return dict(config=cfg_path, checkpoint=ckpt_path, image=img_path)


_BUILT = {}


@pytest.fixture
def tiny_models(tmp_path_factory):
    """kind -> {config, checkpoint, image} paths; each kind built once per session."""
    def get(kind: str) -> dict:
        if kind not in _BUILT:
            _BUILT[kind] = write_tiny_model(
                tmp_path_factory.mktemp(f'analysis_{kind}'), kind)
        return _BUILT[kind]

    return get
