"""The whole-image model as one exportable module: normalised images -> logits.

Why it exists: exporters trace ``forward(tensor)``, while a segmentor's
forward takes data samples and meta dicts. ``WholeImageLogits`` wraps the
segmentor's ``encode_decode`` (logits at the input resolution) on a copy made
by ``optimize_for_inference`` in float32 (conv+BN fused when
``test_cfg.fuse_conv_bn``, no NNPACK convs), with two layers swapped for ones
that compute the same function in standard ops:

- ``WinogradConv2d`` -> ``nn.Conv2d`` (same weights): its NNPACK path is a
  Python autograd function of a CPU-only kernel, chosen by the input size.
- ``nn.AdaptiveAvgPool2d`` -> :class:`ShapeGenericAdaptiveAvgPool2d` (ONNX
  only): torch.onnx lowers adaptive pooling to gathers whose indices are fixed
  at the traced size, so a dynamic-size graph would be wrong at other sizes.
"""
import torch
import torch.nn as nn
from torch import Tensor

from ..acceleration import conv_as, optimize_for_inference
from ..models.layers import WinogradConv2d


def _bin_matrix(size, out: int, like: Tensor) -> Tensor:
    """(out, size) matrix averaging the adaptive-pooling bins of one axis:
    bin i spans [floor(i * size / out), ceil((i + 1) * size / out))."""
    index = torch.arange(out, device=like.device)
    start = torch.div(index * size, out, rounding_mode='floor')
    end = torch.div((index + 1) * size + out - 1, out, rounding_mode='floor')
    pixel = torch.arange(size, device=like.device)
    inside = (pixel[None] >= start[:, None]) & (pixel[None] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


class ShapeGenericAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as two bin-averaging matrices built from the
    input's shape at run time, so one exported graph serves every input size
    (same bins as PyTorch's; sums in another order, about 1e-7 relative)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        if any(s is None for s in size):
            raise ValueError(f'output_size {output_size}: None (keep the input size) is '
                             'not supported')
        self.output_size = tuple(int(s) for s in size)

    def forward(self, x: Tensor) -> Tensor:
        rows = _bin_matrix(x.shape[-2], self.output_size[0], x)
        cols = _bin_matrix(x.shape[-1], self.output_size[1], x)
        return rows @ x @ cols.transpose(0, 1)


def _swap_layers(module: nn.Module, generic_pooling: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, WinogradConv2d):
            setattr(module, name, conv_as(child, nn.Conv2d))
        elif generic_pooling and isinstance(child, nn.AdaptiveAvgPool2d):
            setattr(module, name, ShapeGenericAdaptiveAvgPool2d(child.output_size))
        else:
            _swap_layers(child, generic_pooling)


class WholeImageLogits(nn.Module):
    """Normalised (N, 3, H, W) float32 images -> (N, C, H, W) float32 logits:
    the segmentor's ``encode_decode`` (whole-image inference, one window).

    Args:
        segmentor: a built segmentor in eval mode; it is copied, not changed.
        generic_pooling: swap adaptive pooling for
            :class:`ShapeGenericAdaptiveAvgPool2d` (for ONNX).
    """

    def __init__(self, segmentor: nn.Module, generic_pooling: bool = False) -> None:
        super().__init__()
        model = optimize_for_inference(segmentor, bf16=False, nnpack_convs=False)
        _swap_layers(model, generic_pooling)
        self.segmentor = model
        self.eval()

    def forward(self, inputs: Tensor) -> Tensor:
        # mmseg's predict_by_feat resizes to the first meta's img_shape; a
        # torch.Size there means "the input's size" (its slide-inference case)
        return self.segmentor.encode_decode(inputs, [dict(img_shape=inputs.shape[2:])])
