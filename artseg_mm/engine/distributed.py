"""Multi-process training and testing on CPUs (gloo), for ``dist_train.sh`` without a GPU."""
import gc
import logging
import os

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def prepare_cpu_distributed(cfg: Config) -> bool:
    """Initialise a gloo process group and a CPU-friendly DDP wrapper config.

    Why it exists: mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and
    DDP is built with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When
    the launcher is not ``'none'`` and CUDA is absent, this creates the process
    group itself (``Runner.setup_env`` then skips ``init_dist``) and sets
    ``model_wrapper_cfg.device_ids=None`` unless the config chose otherwise.
    SyncBN layers only run on GPUs, so the model's ``SyncBN`` norm configs
    become per-process ``BN`` (logged). Returns True when it did all this.
    With CUDA, or without a launcher, it does nothing.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    missing = [key for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if key not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher {cfg.launcher} needs the environment variables '
            f'{missing}, which torchrun sets: run tools/dist_train.sh CONFIG N.')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper_cfg.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper_cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if replace_sync_bn(cfg.model):
        print_log('CPU processes: SyncBN needs CUDA, so the model uses per-process '
                  'BN (batch statistics over each process\'s own samples).',
                  logger='current', level=logging.WARNING)
    return True


def replace_sync_bn(node) -> bool:
    """Turn every ``norm_cfg=dict(type='SyncBN')`` under ``node`` into ``BN``, in place."""
    changed = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed = True
        for value in node.values():
            changed = replace_sync_bn(value) or changed
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed = replace_sync_bn(value) or changed
    return changed


def close_distributed() -> None:
    """Destroy the default process group, if any, before the process exits.

    mmengine's Runner leaves it alive; a gloo group torn down by interpreter
    shutdown instead can abort a finished rank ("terminate called without an
    active exception", exit -6), failing a run whose work is done. Call it
    after dropping the Runner: its DDP wrapper holds the group too, hence the
    collection first.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
