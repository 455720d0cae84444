"""Mixed precision that follows the device: fp16 AMP on CUDA, optional bf16 on CPU."""
import logging
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner.amp import autocast

from mmseg.registry import OPTIM_WRAPPERS


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 instructions (avx512_bf16 or AMX) for oneDNN.

    oneDNN's own check (``_is_mkldnn_bf16_supported``) also says yes on plain
    AVX-512, where bf16 is emulated and several times slower than fp32
    (docs/benchmarks.md), so the instruction sets are asked for as well.
    """
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()))


@OPTIM_WRAPPERS.register_module()
class AutoAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` on CUDA; plain fp32 or bf16 autocast on a CPU.

    Why it exists: mmengine's ``AmpOptimWrapper`` asserts a GPU at build time,
    so a config that asks for AMP (the study's recipe) cannot even start on a
    laptop or in CI. On CUDA this class *is* ``AmpOptimWrapper`` (fp16 autocast,
    dynamic loss scaling). Without CUDA it trains in fp32, or under bf16
    autocast when ``cpu_dtype='bfloat16'`` and the CPU has bf16 kernels (bf16
    needs no loss scaling: it has fp32's exponent range).

    Args:
        loss_scale, dtype: as ``AmpOptimWrapper`` (CUDA only).
        cpu_dtype (str, optional): ``'bfloat16'`` for CPU autocast, ``None``
            for fp32. A CPU without bf16 kernels raises a clear error.
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, loss_scale='dynamic', dtype=None,
                 cpu_dtype: Optional[str] = None, **kwargs):
        self.on_cuda = torch.cuda.is_available()
        if self.on_cuda:
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            self.cpu_dtype = None
            return
        OptimWrapper.__init__(self, **kwargs)
        if cpu_dtype not in (None, 'bfloat16'):
            raise ValueError("AutoAmpOptimWrapper: cpu_dtype must be None or "
                             f"'bfloat16', got {cpu_dtype!r}")
        if cpu_dtype == 'bfloat16' and not cpu_supports_bf16():
            raise RuntimeError(
                'AutoAmpOptimWrapper: cpu_dtype=bfloat16 was requested but this '
                'CPU has no native bf16 kernels; set cpu_dtype=None (fp32).')
        self.cpu_dtype = cpu_dtype

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.on_cuda:
            return super().backward(loss, **kwargs)
        return OptimWrapper.backward(self, loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.on_cuda:
            return super().step(**kwargs)
        return OptimWrapper.step(self, **kwargs)

    def state_dict(self) -> dict:
        if self.on_cuda:
            return super().state_dict()
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        if self.on_cuda:
            return super().load_state_dict(state_dict)
        # A checkpoint written on a GPU carries the loss scaler; a CPU run
        # has none to restore.
        state_dict.pop('loss_scaler', None)
        return OptimWrapper.load_state_dict(self, state_dict)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        if self.on_cuda:
            with super().optim_context(model):
                yield
            return
        with OptimWrapper.optim_context(self, model), autocast(
                device_type='cpu', dtype=torch.bfloat16,
                enabled=self.cpu_dtype == 'bfloat16'):
            yield


def enable_amp(cfg) -> None:
    """Turn ``tools/train.py --amp`` into the optimizer wrapper that fits this
    machine: fp16 with loss scaling on CUDA, bf16 autocast on a CPU with bf16
    kernels, else fp32 (with a warning)."""
    wrapper_type = cfg.optim_wrapper.type
    if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper',
                            'AutoAmpOptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, '
                         f'AmpOptimWrapper or AutoAmpOptimWrapper, got {wrapper_type}')
    if torch.cuda.is_available():
        if wrapper_type == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        print_log('--amp: fp16 mixed precision on CUDA.', logger='current')
        return
    cfg.optim_wrapper.type = 'AutoAmpOptimWrapper'
    if cpu_supports_bf16():
        cfg.optim_wrapper.cpu_dtype = 'bfloat16'
        print_log('--amp: no CUDA device; training with bfloat16 autocast on '
                  'the CPU (it has bf16 kernels).', logger='current')
    else:
        print_log('--amp: no CUDA device and no CPU bf16 support; training in '
                  'fp32.', logger='current', level=logging.WARNING)
