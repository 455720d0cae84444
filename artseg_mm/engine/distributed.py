"""Multi-process training and testing on CPUs (gloo), for ``dist_train.sh`` and
``slurm_train.sh`` without a GPU."""
import gc
import logging
import os
import shutil
import subprocess

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
    With ``--launcher slurm`` it first derives torch's variables from the job
    step's (:func:`torch_env_from_slurm`), as mmengine's slurm path does.
    SyncBN layers only run on GPUs, so the model's ``SyncBN`` norm configs
    become per-process ``BN`` (logged). Returns True when it did all this.
    With CUDA, or without a launcher, it does nothing.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    if cfg.launcher == 'slurm':
        torch_env_from_slurm()
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


def torch_env_from_slurm() -> None:
    """Set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from the
    SLURM variables srun gives each task, as mmengine's ``_init_dist_slurm``
    does before its ``torch.cuda.set_device`` (which fails without CUDA).

    MASTER_ADDR, unless already set, is the first host of SLURM_NODELIST
    (``scontrol show hostname``); MASTER_PORT defaults to 29500.
    """
    missing = [key for key in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if key not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the environment variables {missing}, which '
            'srun sets: run tools/slurm_train.sh PARTITION JOB_NAME CONFIG.')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = first_slurm_host(os.environ['SLURM_NODELIST'])
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    # srun sets SLURM_LOCALID for every task; on CPUs it selects no device
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def first_slurm_host(node_list: str) -> str:
    """The first host name of a SLURM node list such as ``node[01-04]``."""
    if shutil.which('scontrol') is None:
        raise RuntimeError(
            f'--launcher slurm: scontrol is not on PATH, so SLURM_NODELIST={node_list} '
            'cannot be resolved to the master host; set MASTER_ADDR.')
    proc = subprocess.run(['scontrol', 'show', 'hostname', node_list],
                          capture_output=True, text=True)
    hosts = proc.stdout.split()
    if proc.returncode != 0 or not hosts:
        raise RuntimeError(
            f'--launcher slurm: `scontrol show hostname {node_list}` gave no host '
            f'(exit {proc.returncode}): {proc.stderr.strip()}')
    return hosts[0]


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
