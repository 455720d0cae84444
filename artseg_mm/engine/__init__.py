"""Runner pieces: safe checkpoints (the hook, from ``artseg_mm.checkpoints``), per-epoch seeding, device-aware AMP, CPU DDP,
a console without the config dump."""
from .distributed import close_distributed, prepare_cpu_distributed
from .hooks.epoch_seed_hook import EpochSeedHook, seeded_worker_init_fn
from ..checkpoints.safe_checkpoint_hook import SafeCheckpointHook
from .optim_wrapper import AutoAmpOptimWrapper, cpu_supports_bf16
from .runner import ArtSegRunner

__all__ = ['ArtSegRunner', 'AutoAmpOptimWrapper', 'EpochSeedHook',
           'SafeCheckpointHook', 'close_distributed', 'cpu_supports_bf16',
           'prepare_cpu_distributed', 'seeded_worker_init_fn']
