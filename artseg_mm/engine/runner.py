"""A Runner whose console shows the run, while the log file keeps everything.

Why it exists: mmengine's Runner prints the whole config (about 500 lines for our
configs) and one line per parameter group option (over 100) to the console, and
mmengine's optimizer constructor warns once per parameter that timm's CoaT registers
twice (128 lines). A person reading a training or test run then scrolls past
hundreds of lines to find the losses. ``ArtSegRunner`` (``runner_type`` in
``configs/_base_/default_runtime.py``) sends those records, the system
environment, the order of the hooks and mmengine's own deprecation notices to the
log file only; everything else, and every record in the file, is as mmengine
writes it.
"""
import logging

from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmseg.registry import RUNNERS

# starts of the messages that go to the log file only: the config, the order of
# the hooks, the system environment and the per-parameter optimizer options
FILE_ONLY_PREFIXES = ('Config:\n', 'Hooks will be executed in the following order',
                      'paramwise_options -- ')
FILE_ONLY_FRAGMENTS = ('\nSystem environment:',
                       'It is skipped since bypass_duplicate=True',
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
    lines in the log file only (``<work_dir>/<timestamp>/<timestamp>.log``)."""

    def build_logger(self, log_level='INFO', log_file=None, **kwargs) -> MMLogger:
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        quiet_console(logger)
        logger.info(f'The environment, the config and the optimizer\'s parameter groups '
                    f'are written to {logger.log_file} only (not to the console).')
        return logger
