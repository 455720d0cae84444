"""benchmarks.demo_training, through its old command line
tools/analysis_tools/time_demo_training.py: one row per setting, and the losses
with no worker equal those with one (main-process loading draws what a worker
draws)."""
import importlib.util
import sys

import pytest

from conftest import REPO, tiny_run_options

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks import demo_training  # noqa: E402
from benchmarks.table import markdown_table  # noqa: E402

pytestmark = pytest.mark.bench

TOOL = REPO / 'tools' / 'analysis_tools' / 'time_demo_training.py'
SET_BY_THE_TOOL = ('num_workers', 'max_epochs', 'val_interval', 'checkpoint.interval')


def load_tool():
    spec = importlib.util.spec_from_file_location('time_demo_training_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_per_setting_and_equal_losses(tiny_demo_root, tmp_path):
    options = [o for o in tiny_run_options(tiny_demo_root, epochs=2)
               if not any(key in o for key in SET_BY_THE_TOOL)]
    out = tmp_path / 'training.md'
    rows = load_tool().main(['--workers', '0', '1', '--threads', '2', '--epochs', '2',
                             '--out', out, '--cfg-options', *options])
    assert [(r.workers, r.threads) for r in rows] == [(0, 2), (1, 2)]
    assert all(r.seconds_per_iter > 0 and r.wall_seconds > 0 for r in rows)
    assert [r.same_losses for r in rows] == [True, True]
    table = markdown_table(rows, demo_training.columns(0))
    assert '\n'.join(table) in out.read_text()
    assert table[-1].endswith(' | yes |')
