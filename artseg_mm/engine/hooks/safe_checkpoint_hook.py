"""A ``CheckpointHook`` whose files load with ``weights_only=True`` and survive kills."""
from mmengine.hooks import CheckpointHook

from mmseg.registry import HOOKS
from ...compat.checkpoint import make_weights_only_safe
from .. import fileio  # noqa: F401  (registers the 'atomic_local' backend)
from ..checkpoint_match import state_dict_mismatch


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

    All ``CheckpointHook`` arguments keep their meaning.
    """

    def __init__(self, *args, backend_args: dict = None, strict_load: bool = True,
                 **kwargs):
        if backend_args is None:
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, backend_args=backend_args, **kwargs)
        self.strict_load = strict_load

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
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
