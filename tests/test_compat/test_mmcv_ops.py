"""The pure-PyTorch ``mmcv.ops`` stand-in: its two ops against independent computations."""
import math

import pytest
import torch
import torch.nn.functional as F

import artseg_mm  # noqa: F401  (must come before mmcv.ops / mmseg.models)
from artseg_mm.compat.mmcv_ops import compiled_ops_available


def test_provided_ops_import():
    from mmcv.ops import point_sample, sigmoid_focal_loss
    assert callable(point_sample) and callable(sigmoid_focal_loss)


def _bilinear_zeros(img, x, y):
    """Bilinear sample of img (C, H, W) at pixel coords (x, y), zero outside."""
    c, h, w = img.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(c, dtype=torch.float64)
    for yy, wy in ((y0, y0 + 1 - y), (y0 + 1, y - y0)):
        for xx, wx in ((x0, x0 + 1 - x), (x0 + 1, x - x0)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wx * wy * img[:, yy, xx].double()
    return out


@pytest.mark.parametrize('align_corners', [False, True])
def test_point_sample_matches_grid_sample_and_bilinear(align_corners):
    from mmcv.ops import point_sample
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 5, 7, generator=g)
    points = torch.rand(2, 6, 2, generator=g)  # (x, y) in [0, 1]
    out = point_sample(feats, points, align_corners=align_corners)
    assert out.shape == (2, 3, 6)
    expected = F.grid_sample(feats, points.unsqueeze(2) * 2 - 1,
                             align_corners=align_corners).squeeze(3)
    torch.testing.assert_close(out, expected)

    # Independent: the pixel-coordinate convention written out by hand.
    h, w = feats.shape[2:]
    for n in range(2):
        for p in range(6):
            px, py = points[n, p].tolist()
            if align_corners:
                x, y = px * (w - 1), py * (h - 1)
            else:
                x, y = px * w - 0.5, py * h - 0.5
            torch.testing.assert_close(
                out[n, :, p].double(), _bilinear_zeros(feats[n], x, y),
                rtol=1e-5, atol=1e-5)


def test_point_sample_grid_points_keep_4d():
    from mmcv.ops import point_sample
    feats = torch.randn(1, 2, 4, 4)
    grid = torch.rand(1, 3, 5, 2)
    out = point_sample(feats, grid)
    assert out.shape == (1, 2, 3, 5)
    torch.testing.assert_close(
        out, F.grid_sample(feats, grid * 2 - 1, align_corners=False))


def _mmcv_focal_reference(logits, target, gamma, alpha, weight, reduction):
    """mmcv's CUDA kernel written out element by element (N x C)."""
    n, c = logits.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        t = int(target[i])
        for j in range(c):
            p = 1 / (1 + math.exp(-float(logits[i, j])))
            if t == j:
                v = -alpha * (1 - p) ** gamma * math.log(p)
            else:
                v = -(1 - alpha) * p ** gamma * math.log(1 - p)
            if weight is not None and t < c:
                v *= float(weight[t])
            out[i, j] = v
    if reduction == 'mean':
        return out.sum() / n
    if reduction == 'sum':
        return out.sum()
    return out


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('with_weight', [False, True])
def test_sigmoid_focal_loss_matches_mmcv_semantics(reduction, with_weight):
    from mmcv.ops import sigmoid_focal_loss
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 4, generator=g) * 3
    target = torch.tensor([0, 1, 2, 3, 4, 2, 4])  # 4 == C: no positive class
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0]) if with_weight else None
    got = sigmoid_focal_loss(logits, target, 1.5, 0.3, weight, reduction)
    expected = _mmcv_focal_reference(logits, target, 1.5, 0.3, weight,
                                     reduction)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


def test_sigmoid_focal_loss_gradient_and_errors():
    from mmcv.ops import sigmoid_focal_loss
    logits = torch.randn(5, 3, requires_grad=True)
    loss = sigmoid_focal_loss(logits, torch.tensor([0, 1, 2, 3, 1]))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='reduction'):
        sigmoid_focal_loss(logits, torch.tensor([0, 1, 2, 3, 1]),
                           reduction='avg')


def test_other_ops_raise_module_not_found_naming_mmcv_lite():
    if compiled_ops_available():
        pytest.fail('full mmcv is installed here: the stand-in is not in use')
    with pytest.raises(ModuleNotFoundError, match='mmcv-lite'):
        from mmcv.ops import RoIAlign  # noqa: F401
    import mmcv.ops
    with pytest.raises(ModuleNotFoundError, match='mmcv-lite'):
        mmcv.ops.CrissCrossAttention  # noqa: B018


def test_mmseg_models_import_and_registry():
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    assert MODELS.get('UPerHead') is not None
    assert MODELS.get('PointHead') is not None  # uses point_sample
