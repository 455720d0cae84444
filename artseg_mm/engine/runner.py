"""A Runner whose console shows the run, while the log file keeps everything.

Why it exists: mmengine's Runner prints the whole config (about 500 lines for our
configs) and one line per parameter group option (over 100) to the console, and
mmengine's optimizer constructor warns once per parameter that timm's CoaT registers
twice (128 lines). A person reading a training or test run then scrolls past
hundreds of lines to find the losses. ``ArtSegRunner`` (``runner_type`` in
``configs/_base_/default_runtime.py``) sends those records, the order of the
hooks and mmengine's own deprecation notices to the log file only; everything
else, and every record in the file, is as mmengine writes it. Its dataloaders
with ``num_workers=0`` draw the augmentations one worker process would
(:class:`~artseg_mm.engine.main_process_loading.WorkerSeededDataLoader`).
"""
import logging

from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmseg.registry import RUNNERS

from .main_process_loading import with_worker_seeded_loading

# starts of the messages that go to the log file only: the config, the order of
# the hooks and the per-parameter optimizer options (the system environment, which
# says how the run was launched, stays on the console)
FILE_ONLY_PREFIXES = ('Config:\n', 'Hooks will be executed in the following order',
                      'paramwise_options -- ')
FILE_ONLY_FRAGMENTS = ('It is skipped since bypass_duplicate=True',
                       # mmengine's CheckpointHook creates a FileClient on every run
                       '"FileClient" will be deprecated', '"HardDiskBackend" is the alias')


class FileOnlyFilter(logging.Filter):
    """Drops the config dump and per-parameter optimizer lines from a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(FILE_ONLY_PREFIXES)
                    or any(part in message for part in FILE_ONLY_FRAGMENTS))


def quiet_console(logger: logging.Logger) -> None:
    """Add :class:`FileOnlyFilter` to the logger's console handlers (once)."""
    for handler in logger.handlers:
        is_console = (isinstance(handler, logging.StreamHandler)
                      and not isinstance(handler, logging.FileHandler))
        if is_console and not any(isinstance(f, FileOnlyFilter) for f in handler.filters):
            handler.addFilter(FileOnlyFilter())


@RUNNERS.register_module()
class ArtSegRunner(Runner):
    """mmengine's ``Runner`` with the config dump and per-parameter optimizer
    lines in the log file only (``<work_dir>/<timestamp>/<timestamp>.log``), and
    main-process loading that trains as one worker process does."""

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        return with_worker_seeded_loading(
            Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed))

    def build_logger(self, log_level='INFO', log_file=None, **kwargs) -> MMLogger:
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        quiet_console(logger)
        logger.info(f'The config, the hook order and the optimizer\'s parameter groups '
                    f'are written to {logger.log_file} only (not to the console).')
        return logger
