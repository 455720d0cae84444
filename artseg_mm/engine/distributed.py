"""Multi-process training and testing on CPUs (gloo), for ``dist_train.sh`` without a GPU."""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config) -> bool:
    """Initialise a gloo process group and a CPU-friendly DDP wrapper config.

    Why it exists: mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and
    DDP is built with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When
    the launcher is not ``'none'`` and CUDA is absent, this creates the process
    group itself (``Runner.setup_env`` then skips ``init_dist``) and sets
    ``model_wrapper_cfg.device_ids=None`` unless the config chose otherwise.
    Returns True when it did so. With CUDA it does nothing.
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
    return True
