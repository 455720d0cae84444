"""FLOPs of a model, counted one way everywhere (compare's table, the
benchmark's): mmengine's counter, one multiply-add = one FLOP (the convention of
mmseg's ``get_flops.py``)."""
import copy
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from ..utils.errors import error_summary

FLOPS_SIZE = (512, 512)
FLOP_CONVENTION = "mmengine counter, 1 multiply-add = 1 FLOP"


def gflops_header(size: Sequence[int] = FLOPS_SIZE) -> str:
    """A table header for GFLOPs at ``size``, with the convention."""
    return f'GFLOPs @{size[0]}x{size[1]} ({FLOP_CONVENTION})'


def gflops(model: torch.nn.Module, device: str,
           size: Sequence[int] = FLOPS_SIZE) -> float:
    """GFLOPs of one forward of a ``1x3xHxW`` input (``model(x)``; for an mmseg
    segmentor its logits), in this module's convention. Raises when the model
    cannot be traced."""
    from mmengine.analysis import FlopAnalyzer
    inputs = torch.randn(1, 3, *size, device=device)
    # mmengine's counter traces with torch.jit, to which WinogradConv2d's NNPACK
    # path is an opaque Python op: count the same convs on PyTorch's default path
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        # the count of get_model_complexity_info, without its activation count;
        # ops the convention leaves out (norms, pooling, resizing) are not warned of
        analyzer = FlopAnalyzer(model, (inputs, )).unsupported_ops_warnings(
            False).uncalled_modules_warnings(False)
        return analyzer.total() / 1e9


def try_gflops(model: torch.nn.Module, device: str,
               size: Sequence[int] = FLOPS_SIZE) -> Tuple[Optional[float], str]:
    """``(gflops(...), '')``, or ``(None, the reason)`` where the model cannot
    be traced (tables then show n/a with the reason)."""
    try:
        return gflops(model, device, size), ''
    except Exception as error:  # returned as the reason
        return None, error_summary(error, limit=160)


def count_flops(model: torch.nn.Module, cfg: Config,
                device: str) -> Tuple[Optional[float], str]:
    """GFLOPs of one 512x512 forward (mmengine's counter: 1 multiply-add = 1 FLOP).

    A fixed-size encoder built for another size (CoaT's ``img_size``) is
    counted on the same architecture built for 512x512 (FLOPs do not depend on
    the weights). Returns (None, reason) when the model cannot be traced.
    """
    count, first = try_gflops(model, device)
    backbone = cfg.model.get('backbone') or {}
    if count is not None or backbone.get('img_size') is None:
        return count, first
    from ..apis import init_model
    resized = copy.deepcopy(cfg)
    resized.model.backbone.img_size = FLOPS_SIZE[0]
    try:
        return gflops(init_model(resized, None, device=device, optimize=False), device), (
            f'counted on the architecture built with img_size={FLOPS_SIZE[0]} '
            f"(the checkpoint's model takes {backbone['img_size']})")
    except Exception as error:  # reported in the table as n/a with both reasons
        return None, f'{first}; with img_size={FLOPS_SIZE[0]}: {error_summary(error, limit=160)}'


def segmentor_complexity(cfg: Config, shape: Tuple[int, int], device: str = 'cpu') -> dict:
    """GFLOPs of one ``shape`` forward and parameters (millions) of the config's
    segmentor, without its auxiliary head and pretrained weights, as mmseg's
    ``get_flops.py`` reports them; a fixed-size encoder (CoaT's ``img_size``) is
    built for ``shape``, which must then be square."""
    from ..apis import build_segmentor
    cfg = copy.deepcopy(cfg)
    note = ''
    backbone = cfg.model.get('backbone') or {}
    if backbone.get('img_size') is not None and backbone['img_size'] != shape[0]:
        if shape[0] != shape[1]:
            raise ValueError(f"the encoder is built for one square size (img_size="
                             f"{backbone['img_size']}); --shape {shape[0]} {shape[1]} "
                             'is not square')
        note = f"encoder built for {shape[0]}x{shape[1]} (the config's img_size is " \
               f"{backbone['img_size']})"
        cfg.model.backbone.img_size = shape[0]
    model = build_segmentor(cfg, device)
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return dict(gflops=gflops(model, device, shape), params_m=params, note=note)
