"""FLOPs of a segmentor, counted one way everywhere: mmengine's counter, one
multiply-add = one FLOP (the convention of mmseg's ``get_flops.py``)."""
import copy
from typing import Optional, Tuple

import torch
from mmengine.config import Config

FLOPS_SIZE = (512, 512)
FLOP_CONVENTION = "mmengine counter, 1 multiply-add = 1 FLOP"


def _flops(model: torch.nn.Module, device: str,
           size: Tuple[int, int] = FLOPS_SIZE) -> float:
    from mmengine.analysis import get_model_complexity_info
    inputs = torch.randn(1, 3, *size, device=device)
    # mmengine's counter traces with torch.jit, to which WinogradConv2d's NNPACK
    # path is an opaque Python op: count the same convs on PyTorch's default path
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False,
                                         show_arch=False)
    return float(info['flops']) / 1e9


def count_flops(model: torch.nn.Module, cfg: Config,
                device: str) -> Tuple[Optional[float], str]:
    """GFLOPs of one 512x512 forward (mmengine's counter: 1 multiply-add = 1 FLOP).

    A fixed-size encoder built for another size (CoaT's ``img_size``) is
    counted on the same architecture built for 512x512 (FLOPs do not depend on
    the weights). Returns (None, reason) when the model cannot be traced.
    """
    try:
        return _flops(model, device), ''
    except Exception as error:  # retried below or reported in the table as n/a
        first = f'{type(error).__name__}: {str(error).splitlines()[0][:160]}'
    from ..apis import init_model
    backbone = cfg.model.get('backbone') or {}
    if backbone.get('img_size') is None:
        return None, first
    resized = copy.deepcopy(cfg)
    resized.model.backbone.img_size = FLOPS_SIZE[0]
    try:
        return _flops(init_model(resized, None, device=device), device), (
            f'counted on the architecture built with img_size={FLOPS_SIZE[0]} '
            f"(the checkpoint's model takes {backbone['img_size']})")
    except Exception as error:  # reported in the table as n/a with both reasons
        return None, (f'{first}; with img_size={FLOPS_SIZE[0]}: {type(error).__name__}: '
                      f'{str(error).splitlines()[0][:160]}')


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
    return dict(gflops=_flops(model, device, tuple(shape)), params_m=params, note=note)
