"""Say exactly how a checkpoint's weights fail to fit a model, and load only
checkpoints that fit."""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

_NAMES_SHOWN = 8


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's state dict does not match the model it is loaded into."""


def list_names(keys: List[str]) -> str:
    """The first few names, and how many more."""
    shown = ', '.join(keys[:_NAMES_SHOWN])
    more = len(keys) - _NAMES_SHOWN
    return shown + (f', ... (+{more} more)' if more > 0 else '')


def revise_state_keys(state: Dict[str, torch.Tensor],
                      revise_keys=((r'^module\.', ''), )) -> 'OrderedDict':
    """``state`` with each ``(pattern, replacement)`` applied to its keys in
    turn, as mmengine's ``load_checkpoint`` does (DDP's ``module.`` prefix)."""
    revised = OrderedDict()
    for key, value in state.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    return revised


def mismatched_keys(model_state: Dict[str, torch.Tensor],
                    checkpoint_state: Dict[str, torch.Tensor]
                    ) -> Tuple[List[str], List[str], List[str]]:
    """``(missing, unexpected, mis_shaped)`` key lists, sorted: model keys the
    checkpoint lacks, checkpoint keys the model lacks, and shared keys whose
    shapes differ."""
    missing = sorted(set(model_state) - set(checkpoint_state))
    unexpected = sorted(set(checkpoint_state) - set(model_state))
    mis_shaped = sorted(
        key for key in set(model_state) & set(checkpoint_state)
        if hasattr(checkpoint_state[key], 'shape')
        and tuple(checkpoint_state[key].shape) != tuple(model_state[key].shape))
    return missing, unexpected, mis_shaped


def _shapes(key, checkpoint_state, model_state) -> str:
    return (f'checkpoint {tuple(checkpoint_state[key].shape)} vs model '
            f'{tuple(model_state[key].shape)}')


def describe_key_mismatch(missing: List[str], unexpected: List[str],
                          mis_shaped: List[str]) -> List[str]:
    """The one report of keys that differ between a checkpoint and a model:
    ``'missing in checkpoint (N): a, b, ...'``, ``'unexpected in checkpoint
    (N): ...'``, ``'shape mismatch (N): key: checkpoint (...) vs model (...)'``,
    each list cut after a few names; only the non-empty parts."""
    return [f'{title} ({len(keys)}): {list_names(keys)}'
            for title, keys in (('missing in checkpoint', missing),
                                ('unexpected in checkpoint', unexpected),
                                ('shape mismatch', mis_shaped)) if keys]


def state_dict_mismatch(model_state: Dict[str, torch.Tensor],
                        checkpoint_state: Dict[str, torch.Tensor],
                        revise_keys=((r'^module\.', ''), )) -> Optional[str]:
    """:func:`describe_key_mismatch` of a model's and a checkpoint's state
    dicts, joined, or None when they fit.

    ``revise_keys`` are applied to the checkpoint's keys first, as mmengine's
    ``load_checkpoint`` does (DDP's ``module.`` prefix by default).
    """
    revised = revise_state_keys(checkpoint_state, revise_keys)
    missing, unexpected, mis_shaped = mismatched_keys(model_state, revised)
    shaped = [f'{k}: {_shapes(k, revised, model_state)}' for k in mis_shaped]
    problems = describe_key_mismatch(missing, unexpected, shaped)
    return '; '.join(problems) if problems else None


SAFETENSORS_SUFFIX = '.safetensors'


def read_checkpoint(filename: str, map_location: Optional[str] = 'cpu',
                    logger=None) -> dict:
    """A checkpoint as a dict: a ``.safetensors`` file (a bare state dict, no
    pickle) as ``{'state_dict': ...}``, anything else through mmengine's
    ``CheckpointLoader`` (``weights_only=True``, see :mod:`.safe_format`)."""
    if str(filename).endswith(SAFETENSORS_SUFFIX):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        if not osp.isfile(filename):
            raise FileNotFoundError(f'checkpoint file not found: {filename}')
        try:
            state = load_file(filename, device=str(map_location or 'cpu'))
        except SafetensorError as error:
            from .safe_format import CorruptCheckpointError
            raise CorruptCheckpointError(
                f'{filename} is not a readable safetensors file ({error})') from error
        return dict(state_dict=state)
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(filename, map_location, logger)


def check_state_fits(model_state: Dict[str, torch.Tensor],
                     checkpoint_state: Dict[str, torch.Tensor], filename: str,
                     model_name: str) -> None:
    """Raise :class:`CheckpointMismatchError` naming ``filename`` and every
    missing, unexpected and shape-mismatched key (keys already revised); BN
    ``num_batches_tracked`` may be absent, as mmengine allows."""
    missing, unexpected, mis_shaped = mismatched_keys(model_state, checkpoint_state)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    mis_shaped = [f'{k}: {_shapes(k, checkpoint_state, model_state)}' for k in mis_shaped]
    parts = describe_key_mismatch(missing, unexpected, mis_shaped)
    if parts:
        raise CheckpointMismatchError(
            f'Checkpoint {filename} does not match the model '
            f'{model_name}: ' + '; '.join(parts))


def check_finite(state_dict: dict, filename: str) -> None:
    """Refuse weights holding NaN or infinity, naming the tensors: such a model
    predicts one class everywhere (or garbage) without any error of its own."""
    bad = [key for key, value in state_dict.items()
           if torch.is_tensor(value) and value.is_floating_point()
           and not bool(torch.isfinite(value).all())]
    if bad:
        shown = ', '.join(bad[:8]) + (f' ... ({len(bad)} in all)' if len(bad) > 8 else '')
        raise CheckpointMismatchError(f'{filename}: non-finite weights (NaN or inf) in {shown}; '
                                      'the training diverged or the file is damaged')


def load_checkpoint_strict(model: nn.Module,
                           filename: str,
                           map_location: Optional[str] = 'cpu',
                           revise_keys=((r'^module\.', ''), ),
                           logger=None) -> dict:
    """Load a checkpoint like ``mmengine.runner.load_checkpoint``, but raise
    :class:`CheckpointMismatchError` naming the file and every missing,
    unexpected and shape-mismatched key instead of only warning (mmengine's
    default ``strict=False`` logs a warning and keeps random weights).

    Reads through :func:`read_checkpoint` (mmengine's ``CheckpointLoader`` with
    ``weights_only=True``, or a ``.safetensors`` file); BN
    ``num_batches_tracked`` may be absent, as mmengine allows. Returns the
    loaded checkpoint dict.
    """
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    target = model.module if is_model_wrapper(model) else model
    checkpoint = read_checkpoint(filename, map_location, logger)
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{filename}: no state dict found (got {type(checkpoint).__name__})')
    revised = revise_state_keys(checkpoint.get('state_dict', checkpoint),
                                revise_keys)
    check_state_fits(target.state_dict(), revised, filename, type(target).__name__)
    check_finite(revised, filename)
    return _load_checkpoint_to_model(target, checkpoint, strict=True,
                                     logger=logger,
                                     revise_keys=list(revise_keys))
