"""DiceFocalLoss: values against a plain-loop reference, modes, weights, dtypes, mmseg use."""
import json
import math

import numpy as np
import pytest
import torch

import artseg_mm  # noqa: F401  (registers the project's modules)
from artseg_mm.models.losses import DiceFocalLoss
from mmseg.registry import MODELS

from conftest import seg_samples

IGNORE = 255


# ---------------------------------------------------------------- reference
def reference_loss(logits, labels, *, lambda_dice=0.7, lambda_focal=0.3,
                   alpha=0.25, gamma=2.0, smooth=1.0, class_weight=None,
                   sigmoid=False, ignore_index=IGNORE):
    """The docstring's formulas, pixel by pixel with plain Python loops."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    n, c_in, h, w = logits.shape
    num_classes = 2 if sigmoid else c_in
    cw = [1.0] * num_classes if class_weight is None else list(class_weight)
    if isinstance(alpha, (list, tuple)):
        a = list(alpha)
    else:
        a = [1 - alpha] + [alpha] * (num_classes - 1)

    inter = [0.0] * num_classes
    total = [0.0] * num_classes
    focal_sum, weight_sum = 0.0, 0.0
    for b in range(n):
        for y in range(h):
            for x in range(w):
                t = int(labels[b, y, x])
                if t == ignore_index:
                    continue
                if sigmoid:
                    p1 = 1 / (1 + math.exp(-logits[b, 0, y, x]))
                    probs = [1 - p1, p1]
                else:
                    z = logits[b, :, y, x]
                    e = [math.exp(v - max(z)) for v in z]
                    probs = [v / sum(e) for v in e]
                for c in range(num_classes):
                    onehot = 1.0 if c == t else 0.0
                    inter[c] += probs[c] * onehot
                    total[c] += probs[c] + onehot
                pt = probs[t]
                focal_sum += -cw[t] * a[t] * (1 - pt) ** gamma * math.log(pt)
                weight_sum += cw[t]
    dice = sum(cw[c] * (1 - (2 * inter[c] + smooth) / (total[c] + smooth))
               for c in range(num_classes)) / sum(cw)
    focal = focal_sum / weight_sum if weight_sum else 0.0
    return lambda_dice * dice + lambda_focal * focal


def binary_focal_reference(logits, labels, alpha=0.25, gamma=2.0):
    """Lin et al.'s binary sigmoid focal loss, mean over non-ignored pixels."""
    z = np.asarray(logits, dtype=np.float64)[:, 0]
    y = np.asarray(labels)
    valid = y != IGNORE
    p = 1 / (1 + np.exp(-z))
    pos = -alpha * (1 - p) ** gamma * np.log(p)
    neg = -(1 - alpha) * p ** gamma * np.log(1 - p)
    return np.where(y == 1, pos, neg)[valid].mean()


@pytest.fixture
def sample():
    """2 x 3 x 4 x 5 logits, labels with a few ignored pixels."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g) * 2
    labels = torch.randint(0, 3, (2, 4, 5), generator=g)
    labels[0, 0, :3] = IGNORE
    labels[1, 2, 4] = IGNORE
    labels[1, 3, 0] = IGNORE
    return logits, labels


# ------------------------------------------------------------------ values
def test_softmax_value_matches_reference(sample):
    logits, labels = sample
    loss = DiceFocalLoss()(logits, labels)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert loss.item() == pytest.approx(reference_loss(logits, labels), rel=1e-5)


def test_each_term_and_parameters_match_reference(sample):
    logits, labels = sample
    for kwargs in (dict(lambda_dice=1.0, lambda_focal=0.0),
                   dict(lambda_dice=0.0, lambda_focal=1.0),
                   dict(alpha=[0.2, 0.5, 0.3], gamma=1.5, smooth=0.5),
                   dict(gamma=0.0, alpha=0.5)):
        got = DiceFocalLoss(**kwargs)(logits, labels).item()
        assert got == pytest.approx(reference_loss(logits, labels, **kwargs),
                                    rel=1e-5), kwargs
    got = DiceFocalLoss(loss_weight=2.5)(logits, labels).item()
    assert got == pytest.approx(2.5 * reference_loss(logits, labels), rel=1e-5)


def test_ignored_pixels_count_in_neither_term(sample):
    logits, labels = sample
    loss_fn = DiceFocalLoss()
    base = loss_fn(logits, labels)
    changed = logits.clone()
    changed[labels.unsqueeze(1).expand_as(logits) == IGNORE] = 50.0
    assert loss_fn(changed, labels).item() == pytest.approx(base.item(), rel=1e-6)
    # The reference that simply drops those pixels agrees.
    assert base.item() == pytest.approx(reference_loss(logits, labels), rel=1e-5)
    # A zero per-pixel weight (mmseg sampler) acts like ignoring that pixel.
    weight = (labels != IGNORE).float()
    clean = labels.clone()
    clean[labels == IGNORE] = 0
    assert loss_fn(logits, clean, weight=weight).item() == pytest.approx(
        base.item(), rel=1e-5)


def test_forward_ignore_index_argument_wins(sample):
    logits, labels = sample
    relabelled = labels.clone()
    relabelled[labels == IGNORE] = -1
    loss_fn = DiceFocalLoss()
    assert loss_fn(logits, relabelled, ignore_index=-1).item() == \
        pytest.approx(loss_fn(logits, labels).item(), rel=1e-6)


def test_all_ignored_gives_zero_and_finite_grad():
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    labels = torch.full((2, 4, 5), IGNORE)
    loss = DiceFocalLoss()(logits, labels)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


def test_sigmoid_mode_value():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 4, 5, generator=g) * 2
    labels = torch.randint(0, 2, (2, 4, 5), generator=g)
    labels[0, 1, 1:4] = IGNORE
    loss = DiceFocalLoss(use_sigmoid=True)(logits, labels)
    assert loss.item() == pytest.approx(
        reference_loss(logits, labels, sigmoid=True), rel=1e-5)
    # The focal term is exactly Lin et al.'s binary sigmoid focal loss.
    focal = DiceFocalLoss(use_sigmoid=True, lambda_dice=0., lambda_focal=1.)
    assert focal(logits, labels).item() == pytest.approx(
        binary_focal_reference(logits, labels), rel=1e-5)
    # ... and sigmoid mode equals softmax mode on the logits (0, z).
    two = torch.cat([torch.zeros_like(logits), logits], dim=1)
    assert DiceFocalLoss()(two, labels).item() == pytest.approx(loss.item(),
                                                                rel=1e-5)


def test_class_weight_effect(sample, tmp_path):
    logits, labels = sample
    weights = [0.2, 1.0, 3.0]
    weighted = DiceFocalLoss(class_weight=weights)(logits, labels).item()
    assert weighted == pytest.approx(
        reference_loss(logits, labels, class_weight=weights), rel=1e-5)
    assert weighted != pytest.approx(DiceFocalLoss()(logits, labels).item(),
                                     rel=1e-3)
    # Uniform weights change nothing (both terms are normalised).
    assert DiceFocalLoss(class_weight=[2., 2., 2.])(logits, labels).item() == \
        pytest.approx(DiceFocalLoss()(logits, labels).item(), rel=1e-5)

    # The converter's file, {"class_weights": [...]}, and a plain list file.
    converter_file = tmp_path / 'class_weights.json'
    converter_file.write_text(json.dumps({'class_weights': weights,
                                          'method': 'inv_sqrt_freq'}))
    plain_file = tmp_path / 'plain.json'
    plain_file.write_text(json.dumps(weights))
    for path in (converter_file, plain_file):
        from_file = DiceFocalLoss(class_weight=str(path))
        assert from_file.class_weight == weights
        assert from_file(logits, labels).item() == pytest.approx(weighted)


def test_class_weight_errors(sample, tmp_path):
    logits, labels = sample
    with pytest.raises(ValueError, match='class_weight has 2 entries but the '
                                         'logits have 3 classes'):
        DiceFocalLoss(class_weight=[1.0, 2.0])(logits, labels)
    with pytest.raises(ValueError, match=r'class_weight has 3 entries.*sigmoid'):
        DiceFocalLoss(use_sigmoid=True, class_weight=[1., 1., 1.])(
            logits[:, :1], labels.clamp(max=1))
    bad_key = tmp_path / 'weights.json'
    bad_key.write_text(json.dumps({'weights': [1, 2, 3]}))
    with pytest.raises(KeyError, match=r'weights\.json.*"class_weights"'):
        DiceFocalLoss(class_weight=str(bad_key))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        DiceFocalLoss(class_weight=str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='non-negative'):
        DiceFocalLoss(class_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match='alpha has 2 entries'):
        DiceFocalLoss(alpha=[0.5, 0.5])(logits, labels)


# --------------------------------------------------------------- gradients
@pytest.mark.parametrize('use_sigmoid', [False, True])
@pytest.mark.parametrize('fill', [0, 1])
def test_finite_grad_on_uniform_batches(use_sigmoid, fill):
    """All-background and all-damage batches, confident logits included."""
    logits = torch.randn(2, 1 if use_sigmoid else 2, 4, 5) * 30
    logits.requires_grad_(True)
    labels = torch.full((2, 4, 5), fill)
    loss = DiceFocalLoss(use_sigmoid=use_sigmoid)(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


# ------------------------------------------------------------------ dtypes
def test_bf16_input_gives_float32_loss(sample):
    logits, labels = sample
    low = logits.to(torch.bfloat16).requires_grad_(True)
    loss = DiceFocalLoss()(low, labels)
    assert loss.dtype == torch.float32
    loss.backward()
    assert low.grad.dtype == torch.bfloat16 and torch.isfinite(
        low.grad.float()).all()
    assert loss.item() == pytest.approx(
        reference_loss(low.detach().float(), labels), rel=1e-5)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        assert DiceFocalLoss()(low, labels).dtype == torch.float32
    half = DiceFocalLoss()(logits.half(), labels)
    assert half.dtype == torch.float32


# ------------------------------------------------------------------ errors
def test_bad_arguments():
    with pytest.raises(ValueError, match="loss_name must start with 'loss_'"):
        DiceFocalLoss(loss_name='dice_focal')
    with pytest.raises(ValueError, match='smooth must be > 0'):
        DiceFocalLoss(smooth=0)
    with pytest.raises(ValueError, match='gamma must be >= 0'):
        DiceFocalLoss(gamma=-1)
    with pytest.raises(ValueError, match=r'alpha must be in \[0, 1\]'):
        DiceFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match=r'alpha must be in \[0, 1\]'):
        DiceFocalLoss(alpha=[0.5, -0.1])
    loss_fn = DiceFocalLoss()
    logits = torch.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r'label values \[7\] outside 0\.\.2'):
        loss_fn(logits, torch.full((2, 4, 5), 7))
    with pytest.raises(ValueError, match='N x C x H x W and labels N x H x W'):
        loss_fn(logits, torch.zeros(2, 4, 6, dtype=torch.long))
    with pytest.raises(ValueError, match='N x 1 x H x W'):
        DiceFocalLoss(use_sigmoid=True)(logits, torch.zeros(2, 4, 5).long())
    with pytest.raises(ValueError, match='use_sigmoid=True'):
        loss_fn(logits[:, :1], torch.zeros(2, 4, 5).long())
    with pytest.raises(TypeError, match='unexpected arguments'):
        loss_fn(logits, torch.zeros(2, 4, 5).long(), foo=1)
    with pytest.raises(ValueError, match='"mean" reduction'):
        loss_fn(logits, torch.zeros(2, 4, 5).long(), reduction_override='sum')


def test_avg_factor_replaces_focal_denominator(sample):
    logits, labels = sample
    focal = DiceFocalLoss(lambda_dice=0., lambda_focal=1.)
    n_valid = int((labels != IGNORE).sum())
    mean = focal(logits, labels).item()
    assert focal(logits, labels, avg_factor=2 * n_valid).item() == \
        pytest.approx(mean / 2, rel=1e-5)


# ------------------------------------------------------------- mmseg usage
def test_build_from_config_dict():
    loss = MODELS.build(dict(type='DiceFocalLoss', lambda_dice=0.5,
                             loss_name='loss_df'))
    assert isinstance(loss, DiceFocalLoss)
    assert loss.loss_name == 'loss_df' and loss.lambda_dice == 0.5
    default = MODELS.build(dict(type='DiceFocalLoss'))
    assert (default.lambda_dice, default.lambda_focal, default.alpha,
            default.gamma) == (0.7, 0.3, 0.25, 2.0)
    assert default.loss_name == 'loss_dice_focal'


@pytest.mark.parametrize('as_list', [False, True])
def test_inside_mmseg_decode_head(sample, as_list):
    logits, labels = sample
    loss_cfg = dict(type='DiceFocalLoss')
    if as_list:
        loss_cfg = [loss_cfg, dict(type='CrossEntropyLoss', loss_weight=0.5)]
    head = MODELS.build(dict(
        type='FCNHead', in_channels=4, channels=4, num_convs=1, num_classes=3,
        loss_decode=loss_cfg))
    losses = head.loss_by_feat(logits, seg_samples(labels))
    assert 'loss_dice_focal' in losses
    assert losses['loss_dice_focal'].item() == pytest.approx(
        reference_loss(logits, labels), rel=1e-5)
    if as_list:
        assert 'loss_ce' in losses


def test_inside_mmseg_decode_head_with_pixel_sampler(sample):
    """mmseg's OHEM sampler passes a N x 1 x H x W per-pixel weight."""
    logits, labels = sample
    head = MODELS.build(dict(
        type='FCNHead', in_channels=4, channels=4, num_convs=1, num_classes=3,
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=10),
        loss_decode=dict(type='DiceFocalLoss')))
    logits = logits.requires_grad_(True)
    losses = head.loss_by_feat(logits, seg_samples(labels))
    losses['loss_dice_focal'].backward()
    assert torch.isfinite(losses['loss_dice_focal'])
    assert torch.isfinite(logits.grad).all()


def test_inside_mmseg_decode_head_single_logit():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 1, 4, 5, generator=g)
    labels = torch.randint(0, 2, (2, 4, 5), generator=g)
    labels[1, 0, 0] = IGNORE
    with pytest.warns(UserWarning):  # mmseg's threshold default notice
        head = MODELS.build(dict(
            type='FCNHead', in_channels=4, channels=4, num_convs=1,
            num_classes=2, out_channels=1,
            loss_decode=dict(type='DiceFocalLoss', use_sigmoid=True)))
    losses = head.loss_by_feat(logits, seg_samples(labels))
    assert losses['loss_dice_focal'].item() == pytest.approx(
        reference_loss(logits, labels, sigmoid=True), rel=1e-5)
