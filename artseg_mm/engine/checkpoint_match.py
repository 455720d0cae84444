"""Say exactly how a checkpoint's weights fail to fit a model."""
import re
from typing import Dict, List, Optional

import torch

_NAMES_SHOWN = 8


def _names(keys: List[str]) -> str:
    shown = ', '.join(keys[:_NAMES_SHOWN])
    more = len(keys) - _NAMES_SHOWN
    return shown + (f', ... (+{more} more)' if more > 0 else '')


def state_dict_mismatch(model_state: Dict[str, torch.Tensor],
                        checkpoint_state: Dict[str, torch.Tensor],
                        revise_keys=((r'^module\.', ''), )) -> Optional[str]:
    """A readable description of missing, unexpected and mis-shaped keys, or None.

    ``revise_keys`` are applied to the checkpoint's keys first, as mmengine's
    ``load_checkpoint`` does (DDP's ``module.`` prefix by default).
    """
    revised = {}
    for key, value in checkpoint_state.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    missing = sorted(set(model_state) - set(revised))
    unexpected = sorted(set(revised) - set(model_state))
    mis_shaped = sorted(
        f'{key} (checkpoint {tuple(revised[key].shape)} vs model '
        f'{tuple(model_state[key].shape)})'
        for key in set(model_state) & set(revised)
        if hasattr(revised[key], 'shape')
        and tuple(revised[key].shape) != tuple(model_state[key].shape))
    problems = []
    if missing:
        problems.append(f'{len(missing)} model keys missing from the checkpoint: '
                        f'{_names(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected checkpoint keys: '
                        f'{_names(unexpected)}')
    if mis_shaped:
        problems.append(f'{len(mis_shaped)} keys with other shapes: '
                        f'{_names(mis_shaped)}')
    return '; '.join(problems) if problems else None
