"""Runner pieces: safe checkpoints, per-epoch seeding, device-aware AMP, CPU DDP,
a console without the config dump."""
from .distributed import close_distributed, prepare_cpu_distributed
from .fileio import AtomicLocalBackend
from .hooks.epoch_seed_hook import EpochSeedHook, seeded_worker_init_fn
from .hooks.safe_checkpoint_hook import SafeCheckpointHook
from .optim_wrapper import AutoAmpOptimWrapper, cpu_supports_bf16
from .runner import ArtSegRunner

__all__ = ['ArtSegRunner', 'AtomicLocalBackend', 'AutoAmpOptimWrapper', 'EpochSeedHook',
           'SafeCheckpointHook', 'close_distributed', 'cpu_supports_bf16',
           'prepare_cpu_distributed', 'seeded_worker_init_fn']
