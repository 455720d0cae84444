from .epoch_seed_hook import EpochSeedHook, seeded_worker_init_fn
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['EpochSeedHook', 'SafeCheckpointHook', 'seeded_worker_init_fn']
