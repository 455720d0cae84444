"""ArtSegRunner's console: no config dump, no per-parameter optimizer lines; the
log file keeps every record."""
import io
import logging

from mmengine.logging import MMLogger

from artseg_mm.engine.runner import quiet_console

FILE_ONLY = ['Config:\nmodel = dict(type="X")',
             'paramwise_options -- backbone.stem.weight:lr=0.001',
             '\n-----\nSystem environment:\n    sys.platform: linux',
             'Hooks will be executed in the following order:\nbefore_run:',
             '"FileClient" will be deprecated in future.',
             'backbone.serial_blocks1.0.cpe.proj.weight is duplicate. '
             'It is skipped since bypass_duplicate=True']


def test_console_drops_config_and_parameter_lines_file_keeps_all(tmp_path):
    log_file = tmp_path / 'run.log'
    logger = MMLogger.get_instance('console_test', log_file=str(log_file))
    console = io.StringIO()
    for handler in logger.handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setStream(console)
    quiet_console(logger)
    quiet_console(logger)  # once is enough: no second filter
    for message in FILE_ONLY:
        logger.info(message)
    logger.info('Epoch(train) [1][1/2] loss: 0.5')
    for handler in logger.handlers:
        handler.flush()
    assert console.getvalue().count('\n') == 1 and 'loss: 0.5' in console.getvalue()
    written = log_file.read_text()
    assert all(message in written for message in FILE_ONLY)
    assert 'loss: 0.5' in written
