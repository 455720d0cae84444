"""The exportable whole-image module computes the segmentor's function."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from deployment_helpers import WINDOW_OPTIONS, write_work_dir


@pytest.mark.parametrize('size,out', [((4, 4), 6), ((7, 5), 3), ((12, 9), (2, 3)),
                                      ((1, 1), 1), ((8, 8), 2)])
def test_shape_generic_pooling_equals_adaptive_avg_pool(size, out):
    from artseg_mm.deployment import ShapeGenericAdaptiveAvgPool2d
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ShapeGenericAdaptiveAvgPool2d(out)(x),
                               nn.AdaptiveAvgPool2d(out)(x), rtol=1e-6, atol=1e-6)


def test_whole_image_logits_are_encode_decode_of_the_model(tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.deployment import ShapeGenericAdaptiveAvgPool2d, WholeImageLogits
    from artseg_mm.models.layers import WinogradConv2d
    model = init_model(str(write_work_dir(tmp_path)), cfg_options=WINDOW_OPTIONS,
                       optimize=False)
    x = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.encode_decode(x, [dict(img_shape=x.shape[2:])])
        for generic in (False, True):
            wrapper = WholeImageLogits(model, generic_pooling=generic)
            layers = list(wrapper.modules())
            assert not any(isinstance(m, WinogradConv2d) for m in layers)
            assert any(isinstance(m, ShapeGenericAdaptiveAvgPool2d) for m in layers) == generic
            assert not any(isinstance(m, _BatchNorm) for m in layers)  # fused into convs
            torch.testing.assert_close(wrapper(x), expected, rtol=1e-4, atol=1e-4)
    assert expected.shape == (2, 2, 96, 160)
    # the model itself is left as it was
    assert any(isinstance(m, WinogradConv2d) for m in model.modules())
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in model.modules())
    assert any(isinstance(m, _BatchNorm) for m in model.modules())
