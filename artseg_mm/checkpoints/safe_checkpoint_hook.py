"""A ``CheckpointHook`` whose files load with ``weights_only=True`` and survive kills."""
import glob
import os
import os.path as osp
from contextlib import contextmanager

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmseg.registry import HOOKS
from . import atomic_io  # noqa: F401  (registers the 'atomic_local' backend)
from .matching import state_dict_mismatch
from .safe_format import make_weights_only_safe, restore_history_buffers


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with three guarantees added.

    1. Safe to load: before every save, ``message_hub``/``meta`` are rewritten
       as plain Python (``make_weights_only_safe``), so the file loads with
       ``torch.load(weights_only=True)`` without allow-listing unsafe globals.
    2. Kill-safe: files are written through ``AtomicLocalBackend`` (temporary
       file + ``os.replace``); mmengine writes ``last_checkpoint`` only after
       that returns, so it never points at a truncated file.
    3. Loud on mismatch: a checkpoint loaded into the runner's model (resume,
       ``load_from``, ``tools/test.py``) whose weights do not fit the model
       stops with the missing, unexpected and mis-shaped keys; mmengine only
       logs a warning and tests a half-random model. ``strict_load=False``
       allows partial loads (e.g. fine-tuning with another ``num_classes``).

    4. Never without a complete checkpoint: an outdated checkpoint
       (``max_keep_ckpts``, the previous best) is deleted only once the new one
       is complete; mmengine deletes it first, so a kill during the save left
       none. Temporary files of a save that was killed are removed when the
       next run starts.

    All ``CheckpointHook`` arguments keep their meaning.
    """

    def __init__(self, *args, backend_args: dict = None, strict_load: bool = True,
                 **kwargs):
        if backend_args is None:
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, backend_args=backend_args, **kwargs)
        self.strict_load = strict_load

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and osp.isdir(self.out_dir):
            for stale in glob.glob(osp.join(self.out_dir, '.*.pth.*.tmp')):
                os.remove(stale)
                print_log(f'removed {stale}, left by a checkpoint save that was killed',
                          logger='current')

    @contextmanager
    def _removals_after_save(self):
        """Hold back mmengine's deletions inside the block; carry them out after it
        returns (the new file is then complete). A failed save keeps the old files."""
        backend, held = self.file_backend, []
        if 'remove' in vars(backend):  # nested in another save: its block holds them
            yield
            return
        remove, rmtree = backend.remove, backend.rmtree
        backend.remove = lambda path: held.append((remove, path))
        backend.rmtree = lambda path: held.append((rmtree, path))
        try:
            yield
        finally:
            del backend.remove, backend.rmtree  # the class's methods again
        for delete, path in held:
            delete(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._removals_after_save():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restore_history_buffers(checkpoint)  # before the runner resumes its message hub
        if not self.strict_load:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        problem = state_dict_mismatch(model.state_dict(),
                                      checkpoint.get('state_dict', checkpoint))
        if problem:
            source = runner._load_from or 'the checkpoint being resumed'
            raise ValueError(
                f'Checkpoint {source} does not match the model '
                f'{type(model).__name__} of this config: {problem}. Use the '
                'config the checkpoint was trained with, or set '
                'default_hooks.checkpoint.strict_load=False to load it partially.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        make_weights_only_safe(checkpoint)
