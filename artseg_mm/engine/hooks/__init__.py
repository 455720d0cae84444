from .epoch_seed_hook import EpochSeedHook, seeded_worker_init_fn
from .inference_optimization_hook import InferenceOptimizationHook

__all__ = ['EpochSeedHook', 'InferenceOptimizationHook', 'seeded_worker_init_fn']
