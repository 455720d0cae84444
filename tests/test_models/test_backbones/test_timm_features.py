"""TimmFeatureBackbone: shapes, layouts, fixed-size CoaT, weights, freezing."""
import functools
import re

import pytest
import timm
import torch
from torch import nn

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.models.backbones import TimmFeatureBackbone
from mmseg.registry import MODELS

SWIN = 'swin_tiny_patch4_window7_224'
# Written down from the papers / timm model cards, not read from timm.
EXPECTED_CHANNELS = {
    'convnext_tiny': [96, 192, 384, 768],
    SWIN: [96, 192, 384, 768],
    'coat_lite_small': [64, 128, 320, 512],
    'resnet50': [256, 512, 1024, 2048],
}
BUILD_KWARGS = {
    'convnext_tiny': {},
    SWIN: {},
    'coat_lite_small': dict(img_size=64),
    'resnet50': dict(out_indices=(1, 2, 3, 4)),  # timm index 0 is ResNet's stride-2 stem
}


def build(model_name, **kwargs):
    cfg = dict(type='TimmFeatureBackbone', model_name=model_name)
    cfg.update(BUILD_KWARGS[model_name])
    cfg.update(kwargs)
    return MODELS.build(cfg)


@functools.lru_cache(maxsize=None)
def shared(model_name):
    """A default build, in eval mode, shared by tests that only read it."""
    return build(model_name).eval()


def timm_features(model_name, path=None, **kwargs):
    """The same features model loaded by timm's own loader, as a reference."""
    kwargs = {**BUILD_KWARGS[model_name], **kwargs}
    if model_name == SWIN:
        kwargs['strict_img_size'] = False
    if path is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    return timm.create_model(model_name, features_only=True, **kwargs)


class NotATensor:
    """A pickled object outside torch's weights_only allow-list."""


@pytest.fixture(scope='module')
def x64():
    torch.manual_seed(0)
    return torch.randn(2, 3, 64, 64)


@pytest.mark.parametrize('model_name', list(EXPECTED_CHANNELS))
def test_shapes_channels_strides(model_name, x64):
    backbone = shared(model_name)
    assert isinstance(backbone, TimmFeatureBackbone)
    assert backbone.out_channels == EXPECTED_CHANNELS[model_name]
    assert backbone.out_strides == [4, 8, 16, 32]
    with torch.no_grad():
        feats = backbone(x64)
    assert isinstance(feats, tuple)
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(EXPECTED_CHANNELS[model_name], [4, 8, 16, 32])]


def test_swin_nhwc_is_returned_as_nchw(x64):
    backbone = shared(SWIN)
    assert backbone.channels_last_output
    assert not shared('convnext_tiny').channels_last_output
    with torch.no_grad():
        feats = backbone(x64)
        raw = backbone.model(x64)
    for f, r in zip(feats, raw):
        assert r.shape[-1] == f.shape[1]  # timm gives N, H, W, C
        torch.testing.assert_close(f, r.permute(0, 3, 1, 2), rtol=0, atol=0)
        assert f.is_contiguous()  # plain NCHW for an NCHW caller
    # a channels-last caller gets channels-last views, no copy
    with torch.no_grad():
        x_cl = x64.contiguous(memory_format=torch.channels_last)
        feats_cl = backbone(x_cl)
    for f, ref in zip(feats_cl, feats):
        assert f.is_contiguous(memory_format=torch.channels_last)
        assert not f.is_contiguous()
        torch.testing.assert_close(f, ref)


def test_swin_takes_sizes_other_than_224():
    backbone = shared(SWIN)
    assert backbone.fixed_size is None
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 96, 160))
    assert [tuple(f.shape[-2:]) for f in feats] == [(24, 40), (12, 20), (6, 10), (3, 5)]


def test_coat_pads_smaller_inputs_and_crops_features(x64):
    backbone = shared('coat_lite_small')
    assert backbone.fixed_size == (64, 64)
    x = x64[:, :, :32, :48]
    with torch.no_grad():
        feats = backbone(x)
        # Independent computation: pad by hand, run timm, crop by hand.
        padded = torch.zeros(2, 3, 64, 64)
        padded[:, :, :32, :48] = x
        reference = backbone.model(padded)
        full = backbone(x64)
        full_reference = backbone.model(x64)
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 8, 12), (2, 128, 4, 6), (2, 320, 2, 3), (2, 512, 1, 2)]
    for f, r in zip(feats, reference):
        h, w = f.shape[-2:]
        torch.testing.assert_close(f, r[..., :h, :w], rtol=0, atol=0)
    for f, r in zip(full, full_reference):
        torch.testing.assert_close(f, r, rtol=0, atol=0)


def test_coat_rejects_larger_inputs_and_bad_sizes():
    backbone = shared('coat_lite_small')
    with pytest.raises(ValueError, match=re.escape(
            'coat_lite_small was built for img_size (64, 64) and got an input of 96x64')):
        backbone(torch.randn(1, 3, 96, 64))
    with pytest.raises(ValueError, match=re.escape(
            'coat_lite_small: img_size (48, 48) must be a multiple of its largest stride 32')):
        build('coat_lite_small', img_size=48)
    # Without img_size, timm's own default size (224) is the one enforced.
    assert build('coat_lite_small', img_size=None).fixed_size == (224, 224)


def test_img_size_is_not_forced_on_models_that_take_any_size():
    backbone = build('convnext_tiny', img_size=64)
    assert backbone.fixed_size is None
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, 96, 64))[0].shape == (1, 96, 24, 16)


@pytest.mark.parametrize('model_name', ['convnext_tiny', SWIN])
def test_drop_path_rate_reaches_timm_blocks(model_name):
    def probs(backbone):
        return [m.drop_prob for m in backbone.modules() if type(m).__name__ == 'DropPath']

    assert probs(shared(model_name)) == []  # rate 0 (timm's Swin default is 0.1)
    rates = probs(build(model_name, drop_path_rate=0.3))
    # timm spreads the rate linearly over the blocks: the deepest block gets it all.
    assert max(rates) == pytest.approx(0.3)
    assert min(rates) < 0.3


# Parameters (features-model names) that frozen_stages=1 must freeze: stem + stage 1.
FROZEN_1 = {
    'convnext_tiny': r'^(stem_\d|stages_0)\.',
    SWIN: r'^(patch_embed|layers_0)\.',
    'coat_lite_small': r'^model\.(cls_token1$|patch_embed1\.|cpe1\.|crpe1\.|serial_blocks1\.)',
    'resnet50': r'^(conv1|bn1|layer1)\.',
}


@pytest.mark.parametrize('model_name', list(FROZEN_1))
def test_frozen_stages(model_name, x64):
    backbone = build(model_name, frozen_stages=1)
    expected = {n for n, _ in backbone.model.named_parameters()
                if re.match(FROZEN_1[model_name], n)}
    frozen = {n for n, p in backbone.model.named_parameters() if not p.requires_grad}
    assert expected and frozen == expected

    backbone.train()
    stage_names = backbone.stage_module_names()
    assert not backbone.model.get_submodule(stage_names[0]).training
    assert backbone.model.get_submodule(stage_names[1]).training
    sum(f.mean() for f in backbone(x64)).backward()
    for name, param in backbone.model.named_parameters():
        if name in frozen:
            assert param.grad is None, name
    trainable = [p for n, p in backbone.model.named_parameters() if n not in frozen]
    assert all(p.grad is not None for p in trainable)


def test_frozen_stem_only_and_too_many_stages():
    backbone = build('resnet50', frozen_stages=0).train()
    frozen = {n for n, p in backbone.model.named_parameters() if not p.requires_grad}
    assert frozen == {'conv1.weight', 'bn1.weight', 'bn1.bias'}
    assert not backbone.model.bn1.training and backbone.model.layer1.training
    with pytest.raises(ValueError, match='frozen_stages=5 but convnext_tiny has 4 stages'):
        build('convnext_tiny', frozen_stages=5)


def test_norm_eval_keeps_batchnorm_statistics(x64):
    backbone = build('resnet50', norm_eval=True).train()
    bns = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert backbone.training and backbone.model.layer1[0].conv1.training
    before = backbone.model.layer1[0].bn1.running_mean.clone()
    backbone(x64)
    torch.testing.assert_close(backbone.model.layer1[0].bn1.running_mean, before)

    plain = build('resnet50').train()
    assert all(m.training for m in plain.modules() if isinstance(m, nn.BatchNorm2d))


def _classifier_file(tmp_path, model_name, seed=1, **kwargs):
    torch.manual_seed(seed)
    classifier = timm.create_model(model_name, **kwargs)
    path = tmp_path / f'{model_name}_timm.pth'
    torch.save(classifier.state_dict(), path)
    return path, classifier.state_dict()


@pytest.mark.parametrize('model_name', ['convnext_tiny', SWIN, 'coat_lite_small'])
def test_timm_format_checkpoint_loads(tmp_path, model_name, x64):
    extra = dict(img_size=64) if model_name == 'coat_lite_small' else {}
    path, state = _classifier_file(tmp_path, model_name, **extra)
    if model_name == SWIN:  # older timm files still carry the recomputed index tables
        state['layers.0.blocks.0.attn.relative_position_index'] = torch.zeros(49, 49).long()
        torch.save(state, path)
    torch.manual_seed(0)
    backbone = build(model_name, checkpoint_path=str(path)).eval()
    reference = timm_features(model_name, path).eval()
    fresh = shared(model_name)
    with torch.no_grad():
        feats, ref, other = backbone(x64), reference(x64), fresh(x64)
    for f, r in zip(feats, ref):
        if model_name == SWIN:
            r = r.permute(0, 3, 1, 2)
        torch.testing.assert_close(f, r)
    assert not torch.allclose(feats[-1], other[-1])
    backbone.init_weights()  # the Runner calls this: it must not re-initialise
    with torch.no_grad():
        torch.testing.assert_close(backbone(x64)[-1], feats[-1])


def test_tensor_values_come_from_the_file(tmp_path):
    path, state = _classifier_file(tmp_path, 'convnext_tiny')
    backbone = build('convnext_tiny', checkpoint_path=str(path))
    torch.testing.assert_close(backbone.model.stem_0.weight, state['stem.0.weight'], rtol=0, atol=0)
    torch.testing.assert_close(backbone.model.stages_3.blocks[2].mlp.fc2.weight,
                               state['stages.3.blocks.2.mlp.fc2.weight'], rtol=0, atol=0)


def test_a_local_file_wins_over_pretrained_true_offline(tmp_path, monkeypatch):
    """pretrained=True (the real configs) and checkpoint_path=FILE: the file's weights,
    no hub access; timm's .safetensors files load the same as .pth."""
    import timm.models._builder as timm_builder
    from safetensors.torch import save_file

    def no_hub(*args, **kwargs):
        raise AssertionError('the hub was contacted')
    monkeypatch.setattr(timm_builder, 'load_pretrained', no_hub)
    path, state = _classifier_file(tmp_path, 'convnext_tiny')
    safetensors_path = tmp_path / 'convnext_tiny.safetensors'
    save_file({k: v.contiguous() for k, v in state.items()}, str(safetensors_path))
    for source in (path, safetensors_path):
        backbone = build('convnext_tiny', pretrained=True, checkpoint_path=str(source))
        torch.testing.assert_close(backbone.model.stages_3.blocks[2].mlp.fc2.weight,
                                   state['stages.3.blocks.2.mlp.fc2.weight'], rtol=0, atol=0)


def _mmengine_file(tmp_path, source):
    """A segmentor checkpoint as mmengine writes it: backbone.model.* and a head."""
    state = {'backbone.model.' + k: v for k, v in source.model.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(2, 8, 1, 1)
    path = tmp_path / 'segmentor.pth'
    torch.save(dict(meta=dict(epoch=3), state_dict=state), path)
    return path


@pytest.mark.parametrize('model_name', ['convnext_tiny', 'coat_lite_small'])
def test_mmengine_format_checkpoint_and_init_cfg(tmp_path, model_name, x64):
    source = shared(model_name)
    path = _mmengine_file(tmp_path, source)
    with torch.no_grad():
        expected = source(x64)

    torch.manual_seed(0)
    by_path = build(model_name, checkpoint_path=str(path)).eval()
    by_init_cfg = build(model_name, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    by_init_cfg.init_weights()
    by_init_cfg.eval()
    with torch.no_grad():
        for backbone in (by_path, by_init_cfg):
            for f, e in zip(backbone(x64), expected):
                torch.testing.assert_close(f, e, rtol=0, atol=0)


def test_mmengine_format_with_timm_classifier_keys(tmp_path):
    _, state = _classifier_file(tmp_path, 'resnet50')
    path = tmp_path / 'wrapped.pth'
    torch.save(dict(state_dict={'backbone.' + k: v for k, v in state.items()}), path)
    backbone = build('resnet50', pretrained=str(path))  # mmseg's segmentor passes paths so
    torch.testing.assert_close(backbone.model.layer4[2].conv3.weight,
                               state['layer4.2.conv3.weight'], rtol=0, atol=0)


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    path, state = _classifier_file(tmp_path, 'resnet50')
    with pytest.raises(ValueError) as err:
        build('convnext_tiny', checkpoint_path=str(path))
    message = str(err.value)
    assert str(path) in message and 'does not match convnext_tiny' in message
    assert re.search(r'missing in checkpoint \(178\): .*stages_0\.blocks\.0', message)
    assert re.search(rf'unexpected in checkpoint \({len(state)}\): .*bn1\.bias', message)

    path, state = _classifier_file(tmp_path, 'convnext_tiny')
    state['stages.1.downsample.1.weight'] = torch.zeros(192, 96, 3, 3)
    torch.save(state, path)
    with pytest.raises(ValueError, match=re.escape(
            'shape mismatch (1): stages.1.downsample.1.weight: checkpoint (192, 96, 3, 3) '
            'vs model (192, 96, 2, 2)')):
        build('convnext_tiny', checkpoint_path=str(path))


def test_unreadable_checkpoints_are_refused(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build('resnet50', checkpoint_path=str(missing))

    unsafe = tmp_path / 'unsafe.pth'
    torch.save(dict(state_dict={}, payload=NotATensor()), unsafe)
    with pytest.raises(ValueError, match=re.escape(
            f'{unsafe}: refused by torch.load(weights_only=True)')):
        build('resnet50', checkpoint_path=str(unsafe))

    not_weights = tmp_path / 'not_weights.pth'
    torch.save({'conv1.weight': torch.zeros(1), 'note': 'text'}, not_weights)
    with pytest.raises(ValueError, match='these entries are not tensors: note'):
        build('resnet50', checkpoint_path=str(not_weights))


def test_full_size_512_coat_and_swin():
    x = torch.randn(1, 3, 512, 512)
    for model_name, kwargs in (('coat_lite_small', dict(img_size=512)), (SWIN, {})):
        backbone = build(model_name, **kwargs).eval()
        with torch.no_grad():
            feats = backbone(x)
        assert [tuple(f.shape[-2:]) for f in feats] == [(128, 128), (64, 64), (32, 32), (16, 16)]
