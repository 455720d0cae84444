"""The study's models, built from the real configs, train and predict on CPU.

Each config's model (timm encoder + UPerFeatureHead, or the U-Net baseline, with
DiceFocal) runs forward + backward at 64x64, and at the real 512x512 crop.
"""
import pytest
import torch

from conftest import STUDY_CONFIGS as CONFIGS
from conftest import study_config
from conftest import build_study_model as build
from conftest import study_batch as batch


def check_trains_and_predicts(model, size, n):
    inputs, samples = batch(size, n)
    model.train()
    losses = model.loss(inputs, samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    no_grad = [k for k, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not no_grad, f'no finite gradient: {no_grad[:5]}'
    model.eval()
    with torch.no_grad():
        preds = model.predict(inputs, samples)
    assert [tuple(p.pred_sem_seg.data.shape) for p in preds] == [(1, size, size)] * n
    assert set(preds[0].pred_sem_seg.data.unique().tolist()) <= {0, 1}


@pytest.mark.parametrize('name', CONFIGS)
def test_config_model_trains_and_predicts_at_64(name):
    model = build(name)
    model.test_cfg.mode = 'whole'
    check_trains_and_predicts(model, 64, n=2)


def test_config_models_train_and_predict_at_512():
    for name in CONFIGS[:3]:
        model = build(name)  # slide test_cfg: one 512 window
        check_trains_and_predicts(model, 512, n=1)


def test_upernet_decoder_convs_run_nnpack_with_the_same_logits():
    """The study configs build plain convs; optimize_for_inference makes the
    3x3 decoder convs WinogradConv2d on CPU: the 1/4-scale ones take NNPACK,
    conv+BN fusion keeps them, and the logits equal those of the same weights
    on PyTorch's default convolution."""
    from artseg_mm.acceleration import optimize_for_inference
    from artseg_mm.models.layers import WinogradConv2d
    model = build('convnext_tiny_upernet').eval()
    assert not any(isinstance(m, WinogradConv2d) for m in model.modules())
    model.test_cfg.mode = 'whole'
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    metas = [dict(img_shape=(256, 256), ori_shape=(256, 256), pad_shape=(256, 256))]
    fast_model = optimize_for_inference(model, fuse_conv_bn=True, nnpack_convs=True)
    fused_head = fast_model.decode_head
    assert isinstance(fused_head.fpn_bottleneck.conv, WinogradConv2d)
    assert all(isinstance(m.conv, WinogradConv2d) for m in fused_head.fpn_convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused_head.modules())
    fusion_input = torch.randn(1, 4 * fused_head.channels, 64, 64)
    assert fused_head.fpn_bottleneck.conv.uses_nnpack(fusion_input)
    with torch.no_grad():
        fast = fast_model.inference(x, metas)
        with torch.backends.nnpack.flags(enabled=False):
            assert not fused_head.fpn_bottleneck.conv.uses_nnpack(fusion_input)
            default = fast_model.inference(x, metas)
        plain = model.inference(x, metas)
    assert fast.shape == (1, 2, 256, 256)
    torch.testing.assert_close(fast, default, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_study_configs_build_no_cpu_only_layers():
    from artseg_mm.models.layers import WinogradConv2d
    for name in ('convnext_tiny_upernet', 'swin_tiny_upernet'):
        assert not any(isinstance(m, WinogradConv2d) for m in build(name).modules()), name
    for name in ('convnext_tiny_upernet', 'swin_tiny_upernet', 'coat_lite_small_upernet'):
        cfg = study_config(name)
        assert 'WinogradConv2d' not in cfg.pretty_text, name
