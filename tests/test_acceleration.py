"""optimize_for_inference: a separate faster copy (conv+BN folded, bf16 weights,
NNPACK head convs) with the plain model's predictions; the plain model itself
holds no copies, so weight edits and hooks act on what predicts."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from artseg_mm.acceleration import fuse_conv_bn_, optimize_for_inference
from artseg_mm.models.layers import WinogradConv2d
from tiny_segmentor import build, metas, randomize_bn, tiny_cfg


def n_bn(module):
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# ------------------------------------------------------------ the plain model
def test_in_place_weight_edit_changes_the_next_prediction():
    model = build(tiny_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True)))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model.inference(x, metas(x))
        model.decode_head.conv_seg.weight.mul_(0)
        model.decode_head.conv_seg.bias.mul_(0)
        after = model.inference(x, metas(x))
    assert before.abs().max() > 0
    assert after.abs().max() == 0  # zero classifier -> zero logits, no stale copy


def test_backbone_hook_fires_during_predict_and_inference_model(tmp_path):
    import cv2

    from mmengine.registry import init_default_scope

    from artseg_mm.apis import inference_model
    init_default_scope('mmseg')
    model = build(tiny_cfg(test_cfg=dict(mode='slide', crop_size=(16, 16), stride=(12, 12),
                                         fuse_conv_bn=True),
                           data_preprocessor=dict(type='SegDataPreProcessor')))
    model.cfg = None
    calls = []
    handle = model.backbone.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(1, 3, 24, 20)
    with torch.no_grad():
        model.predict(x, None)
    assert len(calls) == 4  # one per window (2 x 2), all through the held backbone
    calls.clear()
    from mmengine.config import Config
    model.cfg = Config(dict(default_scope='mmseg',
                            test_pipeline=[dict(type='LoadImageFromFile'),
                                           dict(type='PackSegInputs')]))
    model.dataset_meta = dict(classes=('a', 'b', 'c'), palette=[(0, 0, 0)] * 3)
    image = tmp_path / 'scan.png'
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (24, 20, 3),
                                                              dtype=np.uint8))
    inference_model(model, str(image))
    handle.remove()
    assert len(calls) == 4


# ---------------------------------------------------------- the optimised copy
def test_fused_copy_matches_and_leaves_the_model_intact():
    model = build(tiny_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    fast = optimize_for_inference(model)
    with torch.no_grad():
        plain = model.inference(x, metas(x))
        fused = fast.inference(x, metas(x))
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)
    assert fast is not model and not fast.training
    # backbone (2) + UPerHead ConvModules all folded; the model keeps its BN
    assert n_bn(fast) == 0 and n_bn(model) > 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in fast.parameters())
    unfused = optimize_for_inference(model, fuse_conv_bn=False)
    assert n_bn(unfused) == n_bn(model)


def test_fuse_conv_bn_handles_reverted_syncbn():
    from mmengine.model import revert_sync_batchnorm
    cfg = tiny_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True))
    cfg['decode_head']['norm_cfg'] = dict(type='SyncBN')
    model = revert_sync_batchnorm(build(cfg)).eval()  # SyncBN -> _BatchNormXd
    randomize_bn(model)
    x = torch.randn(1, 3, 32, 32)
    fast = optimize_for_inference(model)
    with torch.no_grad():
        torch.testing.assert_close(fast.inference(x, metas(x)), model.inference(x, metas(x)),
                                   rtol=1e-4, atol=1e-5)
    assert n_bn(fast) == 0


def test_bf16_copy_gives_autocasts_logits_from_bf16_weights():
    model = build(tiny_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True,
                                         autocast_dtype='bfloat16')))
    x = torch.randn(1, 3, 32, 32)
    fast = optimize_for_inference(model)
    fused_fp32 = optimize_for_inference(model, bf16=False, nnpack_convs=False)
    with torch.no_grad():
        got = fast.inference(x, metas(x))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            want = fused_fp32.whole_inference(x, metas(x)).float()
        fp32 = optimize_for_inference(model, bf16=False).encode_decode(x, metas(x))
    assert torch.equal(got, want)  # stored bf16 = autocast's own cast of the fp32 weights
    convs = [m for m in fast.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert fast.test_cfg['autocast_dtype'] == 'bfloat16'
    scale = fp32.abs().max()
    assert (got - fp32).abs().max() <= 0.05 * scale  # bf16 rounding only


def test_bf16_copy_runs_the_head_channels_last():
    from conftest import build_study_model
    model = build_study_model('convnext_tiny_upernet').eval()
    assert model.decode_head.channels_last is False
    fast = optimize_for_inference(model, bf16=True)
    assert fast.decode_head.channels_last is True
    assert not any(isinstance(m, WinogradConv2d) for m in fast.modules())  # NNPACK: fp32 only


def test_nnpack_convs_only_in_the_heads_and_only_plain_convs():
    from conftest import build_study_model
    model = build_study_model('convnext_tiny_upernet').eval()
    fast = optimize_for_inference(model, nnpack_convs=True, bf16=False)
    head_convs = [m for m in fast.decode_head.modules() if isinstance(m, nn.Conv2d)]
    assert head_convs and all(isinstance(m, WinogradConv2d) for m in head_convs)
    assert not any(isinstance(m, WinogradConv2d) for m in fast.backbone.modules())
    assert not any(isinstance(m, WinogradConv2d) for m in model.modules())


def test_fuse_conv_bn_keeps_winograd_convs():
    block = nn.Sequential(WinogradConv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8)).eval()
    randomize_bn(block)
    x = torch.randn(1, 4, 70, 70)
    with torch.no_grad():
        want = block(x)
        assert fuse_conv_bn_(block) == 1
        got = block(x)
    assert isinstance(block[0], WinogradConv2d) and isinstance(block[1], nn.Identity)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('config', ['convnext_tiny_upernet_demo', 'resnet50_unet_demo'])
def test_optimised_copy_gives_the_plain_models_masks_on_the_demo_val_split(
        config, tiny_demo_root):
    """fp32, every val image of the tiny demo data set: the same class ids."""
    from mmengine.config import Config

    from artseg_mm.apis import ScanInferencer
    from artseg_mm.apis.model_loader import build_segmentor
    from conftest import REPO
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / f'{config}.py'))
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root)
    model = build_segmentor(cfg)
    randomize_bn(model)
    model.dataset_meta = dict(classes=('clean', 'damage'), palette=[(0, 0, 0), (255, 0, 0)])
    plain = ScanInferencer(model)
    fast = ScanInferencer(optimize_for_inference(model))
    images = sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))
    assert images
    for path in images:
        assert np.array_equal(plain(str(path)), fast(str(path))), path.name


def test_test_tool_hook_tests_the_optimised_copy_of_the_loaded_model():
    from types import SimpleNamespace

    from artseg_mm.engine.hooks import InferenceOptimizationHook
    model = build(tiny_cfg(test_cfg=dict(mode='whole', fuse_conv_bn=True)))
    runner = SimpleNamespace(model=model)
    InferenceOptimizationHook().before_test(runner)
    assert runner.model is not model and n_bn(runner.model) == 0 and n_bn(model) > 0
    tta = SimpleNamespace(model=nn.Module())  # no test_cfg: tested as built
    kept = tta.model
    InferenceOptimizationHook().before_test(tta)
    assert tta.model is kept
