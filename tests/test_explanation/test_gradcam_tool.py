"""Grad-CAM: tool end to end, reshape transform, layer names, and the CAM values."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from analysis_helpers import IMG_H, IMG_W, build_backbone, load_tool, tiny_models  # noqa: F401


@pytest.fixture(scope='module')
def cam_tool():
    return load_tool('visualization_cam')


@pytest.mark.parametrize('kind', ['convnext', 'swin'])
def test_cam_tool_end_to_end(kind, tiny_models, tmp_path, cam_tool, capsys):
    files = tiny_models(kind)
    out = tmp_path / 'cam'
    rc = cam_tool.main([str(files['config']), str(files['checkpoint']), str(files['image']),
                        '--out', str(out), '--save-npy', '--device', 'cpu'])
    assert rc == 0, capsys.readouterr()
    stem = f"{files['image'].stem}_{kind}_tiny"
    overlay = Image.open(out / f'{stem}_cam.png')
    assert overlay.size == (IMG_W, IMG_H)
    assert overlay.mode == 'RGB'
    assert (out / f'{stem}_cam_figure.png').stat().st_size > 0
    cam = np.load(out / f'{stem}_cam.npy')
    assert cam.shape == (IMG_H, IMG_W)
    assert cam.dtype == np.float32
    assert 0.0 <= cam.min() and cam.max() <= 1.0 + 1e-6
    assert cam.max() - cam.min() > 0.5  # not constant: min-max normalised map
    printed = capsys.readouterr().out
    expected_layer = {'convnext': 'backbone.model.stages_3',
                      'swin': 'backbone.model.layers_3'}[kind]
    assert f"class 'Damage' at {expected_layer}" in printed


def test_cam_tool_head_layer_and_category(tiny_models, tmp_path, cam_tool, capsys):
    """`head` = the decode head's fused feature; --category by name."""
    files = tiny_models('convnext')
    out = tmp_path / 'cam_head'
    rc = cam_tool.main([str(files['config']), str(files['checkpoint']), str(files['image']),
                        '--out', str(out), '--target-layers', 'head', '--category', 'Damage'])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "class 'Damage' at decode_head.fpn_bottleneck" in printed.out
    overlay = out / f'{files["image"].stem}_convnext_tiny_cam.png'
    assert Image.open(overlay).size == (IMG_W, IMG_H)


def test_wrong_layer_name_lists_close_candidates(tiny_models, tmp_path, cam_tool, capsys):
    from artseg_mm.explanation.cam import LayerNotFoundError, get_module, load_segmentor
    files = tiny_models('convnext')
    model = load_segmentor(files['config'], files['checkpoint'])
    with pytest.raises(LayerNotFoundError) as err:
        get_module(model, 'backbone.model.stage_3')
    assert "no layer named 'backbone.model.stage_3'" in str(err.value)
    assert 'backbone.model.stages_3' in str(err.value)
    # dotted and indexed spellings of an existing layer both resolve
    assert get_module(model, 'backbone.model.stages_2.blocks[1]') is \
        model.backbone.model.stages_2.blocks[1]

    rc = cam_tool.main([str(files['config']), str(files['checkpoint']), str(files['image']),
                        '--out', str(tmp_path), '--target-layers', 'backbone.model.stage_3'])
    err_text = capsys.readouterr().err
    assert rc == 2
    assert 'backbone.model.stages_3' in err_text and 'Traceback' not in err_text


def test_reshape_transform_nhwc_nchw_tokens():
    from artseg_mm.explanation.cam import FeatureReshape
    reshape = FeatureReshape((64, 96))
    nhwc = torch.randn(2, 4, 6, 40)  # stride 16: 4x6 grid, 40 channels last
    assert torch.equal(reshape(nhwc), nhwc.permute(0, 3, 1, 2))
    nchw = torch.randn(2, 40, 4, 6)
    assert reshape(nchw) is nchw
    # Swin-like ambiguous square case: both layouts fit, the module family decides
    square = torch.randn(1, 16, 16, 16)
    assert FeatureReshape((64, 64), channels_last=True)(square).equal(square.permute(0, 3, 1, 2))
    assert FeatureReshape((64, 64), channels_last=False)(square) is square
    # tokens with a class token first (CoaT): dropped, laid on the 2x3 grid (stride 32)
    tokens = torch.randn(2, 1 + 2 * 3, 8)
    grid = reshape(tokens)
    assert grid.shape == (2, 8, 2, 3)
    assert torch.equal(grid[:, :, 1, 2], tokens[:, 1 + 1 * 3 + 2])
    with pytest.raises(ValueError, match='neither as NCHW nor as NHWC'):
        reshape(torch.randn(1, 5, 7, 9))


def test_default_target_layers_per_encoder():
    from artseg_mm.explanation.cam import default_target_layer_names

    expected = {'convnext': 'backbone.model.stages_3', 'swin': 'backbone.model.layers_3',
                'coat': 'backbone.model.model.serial_blocks4.1',  # coat_lite_tiny: 2 blocks
                'resnet': 'backbone.model.layer4'}
    for kind, name in expected.items():
        holder = torch.nn.Module()
        holder.backbone = build_backbone(kind)
        assert default_target_layer_names(holder) == [name], kind
        assert name in dict(holder.named_modules())


def test_gradcam_matches_an_independent_computation(tiny_models):
    """Grad-CAM by hand: weights = spatial mean of d(target)/d(A), relu(sum w A)."""
    from artseg_mm.explanation.cam import (SegLogitsWrapper, compute_gradcam, load_segmentor,
                                        prepare_image)
    files = tiny_models('convnext')
    model = load_segmentor(files['config'], files['checkpoint'])
    image = prepare_image(model, files['image'])
    layer = model.backbone.model.stages_3
    result = compute_gradcam(model, image.inputs, ['backbone.model.stages_3'], 'Damage',
                             image.img_shape)

    store = {}
    handle = layer.register_forward_hook(
        lambda m, i, o: store.update(act=o) or o.retain_grad())
    logits = SegLogitsWrapper(model)(image.inputs)[0]
    handle.remove()
    mask = (logits.argmax(0) == 1).float()
    assert mask.sum() > 0
    (logits[1] * mask).sum().backward()
    act, grad = store['act'], store['act'].grad
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1))[0].detach().numpy()
    for size in ((IMG_W, IMG_H), None):  # min-max, resize; min-max again (grad-cam's order)
        cam = cam - cam.min()
        cam = cam / (cam.max() + 1e-7)
        cam = cv2.resize(cam, size) if size else cam
    np.testing.assert_allclose(result.cam, cam, atol=1e-4)
    assert result.category == 1 and result.category_name == 'Damage'
    np.testing.assert_array_equal(result.pred, logits.argmax(0).numpy())


def test_category_resolution():
    from artseg_mm.explanation.cam import resolve_category
    binary = ['Clean', 'Damage']
    pred = np.zeros((4, 4), dtype=np.int64)
    assert resolve_category(None, binary, pred) == 1
    assert resolve_category('damage', binary, pred) == 1
    assert resolve_category('0', binary, pred) == 0
    full = ['Clean', 'Material loss', 'Peel', 'Dust']
    pred[:2] = 3
    pred[0, 0] = 2
    assert resolve_category(None, full, pred) == 3  # largest predicted non-Clean class
    with pytest.raises(ValueError, match='classes: Clean, Damage'):
        resolve_category('Scratch', binary, pred)
    with pytest.raises(ValueError, match='out of range'):
        resolve_category(5, binary, pred)


def test_reshape_transform_crops_a_fixed_size_backbones_padding():
    """CoaT built for 96x128 and fed 64x96 sees a padded grid: crop to the input."""
    from artseg_mm.explanation.cam import FeatureReshape
    reshape = FeatureReshape((64, 96), padded_hw=(96, 128))
    tokens = torch.randn(1, 1 + 3 * 4, 8)       # stride 32 on 96x128, class token first
    grid = reshape(tokens)
    assert grid.shape == (1, 8, 2, 3)           # ceil(64/32) x ceil(96/32)
    full = tokens[:, 1:].reshape(1, 3, 4, 8).permute(0, 3, 1, 2)
    assert torch.equal(grid, full[:, :, :2, :3])
    head_map = torch.randn(1, 8, 16, 24)        # a head feature on the input grid: kept
    assert reshape(head_map) is head_map


def test_cam_on_coat_with_padding(tiny_models):
    from artseg_mm.explanation.cam import compute_gradcam, load_segmentor, prepare_image
    files = tiny_models('coat')
    model = load_segmentor(files['config'], files['checkpoint'],
                           cfg_options={'model.backbone.img_size': (96, 128)})
    assert tuple(model.backbone.fixed_size) == (96, 128)
    image = prepare_image(model, files['image'])
    for layer in ('backbone.model.model.serial_blocks3.1', None):
        result = compute_gradcam(model, image.inputs, [layer] if layer else None,
                                 img_shape=image.img_shape)
        assert result.cam.shape == (IMG_H, IMG_W)
        assert np.isfinite(result.cam).all()
    assert result.target_layers == ['backbone.model.model.serial_blocks4.1']


class _SigmoidSegmentor(torch.nn.Module):
    """A segmentor with one output channel (mmseg's sigmoid binary head)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1),
                                            torch.nn.ReLU())
        self.decode_head = torch.nn.Conv2d(6, 1, 1)
        self.decode_head.threshold = 0.5
        self.dataset_meta = dict(classes=('Clean', 'Damage'))

    def encode_decode(self, inputs, batch_img_metas):
        return self.decode_head(self.backbone(inputs))


@pytest.mark.parametrize('category,sign', [('Damage', 1.0), ('Clean', -1.0)])
def test_gradcam_single_channel_sigmoid_head(category, sign):
    """Damage targets +logit over the pixels with sigmoid > threshold, Clean -logit."""
    from artseg_mm.explanation.cam import compute_gradcam
    model = _SigmoidSegmentor().eval()
    inputs = torch.randn(1, 3, 8, 12)
    result = compute_gradcam(model, inputs, ['backbone.0'], category)
    with torch.no_grad():
        logit = model.encode_decode(inputs, None)[0, 0]
    damage = logit.sigmoid() > 0.5
    np.testing.assert_array_equal(result.pred, damage.long().numpy())
    mask = (damage if sign > 0 else ~damage).float()
    assert mask.sum() > 0
    act = model.backbone[0](inputs).detach().requires_grad_(True)
    score = (sign * model.decode_head(torch.relu(act))[0, 0] * mask).sum()
    grad, = torch.autograd.grad(score, act)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1))[0].detach().numpy()
    cam = cam - cam.min()
    cam = cam / (cam.max() + 1e-7)
    np.testing.assert_allclose(result.cam, cam, atol=1e-5)


def test_large_image_is_analysed_in_the_slide_window(tiny_models, tmp_path, cam_tool,
                                                      capsys):
    """A slide-inference model sees crop_size windows: the CAM covers the window
    centred on --center (clipped to the image), unless --whole."""
    files = tiny_models('convnext')
    slide = ['--cfg-options', 'model.test_cfg.mode=slide',
             'model.test_cfg.crop_size=(32,48)', 'model.test_cfg.stride=(16,16)']
    args = [str(files['config']), str(files['checkpoint']), str(files['image'])]
    out = tmp_path / 'window'
    rc = cam_tool.main(args + ['--out', str(out), '--center', '90', '5'] + slide)
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert 'window x 48..96, y 0..32 of 96x64' in printed.out
    assert Image.open(out / f'{files["image"].stem}_convnext_tiny_cam.png').size == (48, 32)
    rc = cam_tool.main(args + ['--out', str(tmp_path / 'whole'), '--whole'] + slide)
    assert rc == 0
    whole = tmp_path / 'whole' / f'{files["image"].stem}_convnext_tiny_cam.png'
    assert Image.open(whole).size == (IMG_W, IMG_H)


def test_head_alias_per_decode_head():
    """`head` = the module whose output `_forward_feature` returns."""
    import artseg_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from artseg_mm.explanation.cam import LayerNotFoundError, get_module, resolve_layer_name
    init_default_scope('mmseg')
    common = dict(in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3], num_classes=2)
    feats = [torch.randn(1, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate([8, 16, 32, 64])]
    for head_cfg, expected in [
            (dict(type='UPerFeatureHead', channels=8, **common), 'decode_head.fpn_bottleneck'),
            (dict(type='UNetHead', channels=8, decoder_channels=(16, 8, 8), **common),
             'decode_head.blocks.2')]:
        holder = torch.nn.Module()
        holder.decode_head = MODELS.build(head_cfg).eval()
        assert resolve_layer_name(holder, 'head') == expected
        seen = {}
        handle = get_module(holder, 'head').register_forward_hook(
            lambda m, i, o: seen.update(out=o))
        with torch.no_grad():
            fused = holder.decode_head._forward_feature(feats)
        handle.remove()
        assert torch.equal(seen['out'], fused)
    with pytest.raises(LayerNotFoundError, match='name a layer instead'):
        resolve_layer_name(torch.nn.Module(), 'head')


def _cam_with_grad_cam_target(model, inputs, layer_names, channel, weights):
    """Grad-cam's own GradCAM and SemanticSegmentationTarget(channel, weights),
    cropped and re-scaled to the image as compute_gradcam does."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    from artseg_mm.explanation.cam import SegLogitsWrapper, get_module, make_reshape_transform
    layers = [get_module(model, name) for name in layer_names]
    padded = getattr(getattr(model, 'backbone', None), 'fixed_size', None)
    cam_fn = GradCAM(model=SegLogitsWrapper(model).eval(), target_layers=layers,
                     reshape_transform=make_reshape_transform(layers, tuple(inputs.shape[2:]),
                                                              padded))
    padded_weights = np.zeros(inputs.shape[2:], dtype=np.float32)
    h, w = weights.shape
    padded_weights[:h, :w] = weights
    try:
        with torch.enable_grad():
            cam = cam_fn(input_tensor=inputs,
                         targets=[SemanticSegmentationTarget(channel, padded_weights)])[0]
    finally:
        cam_fn.activations_and_grads.release()
    cam = cam[:h, :w]
    if (h, w) != tuple(inputs.shape[2:]) and cam.max() > cam.min():
        cam = (cam - cam.min()) / (cam.max() - cam.min())
    return cam


@pytest.mark.parametrize('kind', ['convnext', 'swin', 'coat', 'resnet'])
def test_cam_equals_grad_cam_semantic_segmentation_target(kind, tiny_models):
    """The class's logit over the pixels predicted as it (the whole image if
    none): the CAM equals grad-cam's SemanticSegmentationTarget's."""
    from artseg_mm.explanation.cam import compute_gradcam, load_segmentor, prepare_image
    files = tiny_models(kind)
    options = {'model.backbone.img_size': (96, 128)} if kind == 'coat' else None
    model = load_segmentor(files['config'], files['checkpoint'], cfg_options=options)
    image = prepare_image(model, files['image'])
    for category in ('Damage', 'Clean'):
        result = compute_gradcam(model, image.inputs, None, category, image.img_shape)
        mask = np.ones(result.pred.shape, np.float32) if result.whole_image_target else (
            result.pred == result.category).astype(np.float32)
        theirs = _cam_with_grad_cam_target(model, image.inputs, result.target_layers,
                                           result.category, mask)
        np.testing.assert_array_equal(result.cam, theirs)


@pytest.mark.parametrize('category,sign', [('Damage', 1.0), ('Clean', -1.0)])
def test_sigmoid_cam_equals_grad_cam_semantic_segmentation_target(category, sign):
    """One sigmoid channel: Damage is +logit, Clean -logit over its pixels."""
    from artseg_mm.explanation.cam import compute_gradcam
    model = _SigmoidSegmentor().eval()
    inputs = torch.randn(1, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    result = compute_gradcam(model, inputs, ['backbone.0'], category)
    mask = (result.pred == (1 if sign > 0 else 0)).astype(np.float32)
    assert mask.sum() > 0
    theirs = _cam_with_grad_cam_target(model, inputs, ['backbone.0'], 0, sign * mask)
    np.testing.assert_array_equal(result.cam, theirs)
