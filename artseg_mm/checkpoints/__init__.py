"""Checkpoint files, in one place: reading them safely (``weights_only=True``,
``.safetensors``) and writing them atomically and free of pickled objects
(``safe_format``, ``atomic_io``, ``SafeCheckpointHook``), matching their weights
to a model with one report of the keys that differ (``matching``), and choosing
the one a run resumes from or a work dir is tested with (``selection``)."""
from .atomic_io import AtomicLocalBackend
from .matching import (CheckpointMismatchError, check_finite, load_checkpoint_strict,
                       read_checkpoint, state_dict_mismatch)
from .safe_format import (CorruptCheckpointError, PlainHistoryBuffer, UnsafeCheckpointError,
                          load_checkpoint_file, make_weights_only_safe)
from .selection import find_resume_checkpoint, find_test_checkpoint, plan_resume

__all__ = ['AtomicLocalBackend', 'CheckpointMismatchError', 'CorruptCheckpointError',
           'PlainHistoryBuffer', 'UnsafeCheckpointError', 'check_finite',
           'find_resume_checkpoint', 'find_test_checkpoint', 'load_checkpoint_file',
           'load_checkpoint_strict', 'make_weights_only_safe', 'plan_resume',
           'read_checkpoint', 'state_dict_mismatch']
