"""Parameter groups for models that register one module under several names."""
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SharedParamOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that puts a shared parameter in one group.

    Why it exists: mmengine walks ``named_children`` and adds a group for every
    place a module appears, so a module registered twice (timm's CoaT shares its
    ``cpe*``/``crpe*`` position encoders between the model and each serial
    block) yields the same parameter twice and ``torch.optim`` refuses to build
    ("some parameters appear in more than one parameter group"). Here the first
    occurrence, in module order, keeps the parameter with its paramwise
    settings; later ones are dropped. Models without sharing get exactly
    mmengine's groups.
    """

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', is_dcn_module=None) -> None:
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:  # the recursion's inner calls; deduplicate once at the top
            return
        seen = set()
        unique = []
        for group in params:
            kept = [p for p in group['params'] if id(p) not in seen]
            seen.update(id(p) for p in kept)
            if kept:
                unique.append(dict(group, params=kept))
        params[:] = unique
