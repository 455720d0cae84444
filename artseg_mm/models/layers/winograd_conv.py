"""3x3 convolution that runs PyTorch's bundled NNPACK (Winograd) kernels on CPU."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.flop_counter import conv_flop_count, flop_registry, register_flop_formula

from mmseg.registry import MODELS

# PyTorch's NNPACK convolution op (what ``torch.backends.nnpack`` switches)
_nnpack_conv = torch.ops.aten._nnpack_spatial_convolution


def nnpack_usable() -> bool:
    """NNPACK is built into this torch, runs on this CPU and is not switched off
    (``torch.backends.nnpack.flags(enabled=False)``)."""
    # the getter behind torch.backends.nnpack.flags (no public one exists)
    return torch.backends.nnpack.is_available() and torch._C._get_nnpack_enabled()


def cpu_bf16_autocast_enabled() -> bool:
    """Whether a CPU autocast region with bfloat16 is active (then the convs are
    oneDNN's bf16 kernels, not NNPACK's fp32 ones)."""
    return (torch.is_autocast_enabled('cpu')
            and torch.get_autocast_dtype('cpu') == torch.bfloat16)


def _per_sample(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                padding: List[int]) -> Tensor:
    # NNPACK's batch-1 entry point (nnp_convolution_inference) is the fast one:
    # one sample at a time beats NNPACK's batched call (docs/benchmarks.md)
    outs = [_nnpack_conv(xi, weight, bias, padding) for xi in x.split(1)]
    return outs[0] if len(outs) == 1 else torch.cat(outs)


class _WinogradConv2dFunction(torch.autograd.Function):
    """Forward and input gradient by NNPACK, weight and bias gradients by
    PyTorch's ``convolution_backward`` (one batched call).

    The input gradient of a stride-1 convolution is itself a stride-1
    convolution of the output gradient with the transposed, flipped kernel and
    padding ``k - 1 - p``, so NNPACK serves it too; NNPACK's own autograd
    formula would send the whole backward to the slower direct kernels.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor],
                padding: List[int]) -> Tensor:
        x, weight = x.contiguous(), weight.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return _per_sample(x, weight, bias, padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x:
            flipped = weight.transpose(0, 1).flip(2, 3).contiguous()
            k_h, k_w = weight.shape[2:]
            grad_x = _per_sample(grad_out, flipped, None,
                                 [k_h - 1 - ctx.padding[0], k_w - 1 - ctx.padding[1]])
        if need_w or need_b:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out, x, weight, ctx.bias_sizes, [1, 1], ctx.padding, [1, 1],
                False, [0, 0], 1, [False, need_w, need_b])
        return grad_x, grad_w, grad_b, None


@MODELS.register_module()
class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose 3x3 stride-1 float32 CPU convolutions on large maps
    run NNPACK's Winograd kernels (bundled with PyTorch) instead of oneDNN's
    direct ones.

    Why it exists: PyTorch sends CPU convolutions to oneDNN, which computes a
    3x3 convolution directly (9 multiply-adds per output pixel and channel
    pair) and picks NNPACK only for batches of 16 or more. NNPACK's Winograd
    F(6x6, 3x3) needs about a fifth of the multiplications, plus transforms
    whose cost grows with pixels x channels, not with channel pairs.
    UPerNet's decoder is mostly 3x3 convolutions at 1/4 resolution (the
    fusion conv over 4 x 256 channels is half of all FLOPs with a ConvNeXt-T
    encoder), so on a CPU this is where the time goes, and NNPACK runs it
    faster than oneDNN, forward and backward (docs/benchmarks.md). On
    maps smaller than ``min_pixels`` NNPACK's transforms cost more than they
    save, so those stay on oneDNN.

    Same parameters and state-dict keys as ``nn.Conv2d``; every other case
    (CUDA, autocast, non-float32, other kernel sizes, strides, dilations,
    groups, padding modes, NNPACK unavailable or switched off) is exactly
    ``nn.Conv2d.forward``. Winograd rounds differently from direct
    convolution: outputs agree to about 1e-5 relative. NNPACK's thread pool
    takes ``torch.get_num_threads()`` at its first use in a process and keeps
    it (measured: a later ``torch.set_num_threads`` does not resize it), so
    set the thread count before the first forward.

    Args:
        *args, **kwargs: ``nn.Conv2d`` arguments.
        min_pixels (int): smallest ``H * W`` of the input that takes the
            NNPACK path. Default 4096 (64 x 64).
    """

    def __init__(self, *args, min_pixels: int = 64 * 64, **kwargs):
        super().__init__(*args, **kwargs)
        if min_pixels < 1:
            raise ValueError(f'{type(self).__name__}: min_pixels must be >= 1, '
                             f'got {min_pixels}')
        self.min_pixels = min_pixels

    def uses_nnpack(self, x: Tensor) -> bool:
        """Whether ``forward(x)`` takes the NNPACK path."""
        return (self.kernel_size == (3, 3) and self.stride == (1, 1)
                and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == 'zeros'
                and isinstance(self.padding, tuple)
                and all(0 <= p <= 2 for p in self.padding)
                and x.dim() == 4 and x.device.type == 'cpu'
                and x.dtype == self.weight.dtype == torch.float32
                and x.shape[2] * x.shape[3] >= self.min_pixels
                and not torch.is_autocast_enabled('cpu')
                and nnpack_usable())

    def forward(self, x: Tensor) -> Tensor:
        if not self.uses_nnpack(x):
            return super().forward(x)
        return _WinogradConv2dFunction.apply(x, self.weight, self.bias,
                                             list(self.padding))

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, min_pixels={self.min_pixels}'


def _nnpack_conv_flop(x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], *args,
                      out_shape=None, **kwargs) -> int:
    """FLOPs of the direct convolution NNPACK replaces (what torch counts for
    ``aten.convolution``), so FLOP counts do not change with the algorithm."""
    return conv_flop_count(x_shape, w_shape, out_shape)


if _nnpack_conv not in flop_registry:
    register_flop_formula(_nnpack_conv)(_nnpack_conv_flop)
