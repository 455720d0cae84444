"""tools/analysis_tools/time_demo_training.py: one row per setting, and the
losses with no worker equal those with one (main-process loading draws what a
worker draws)."""
import re

from conftest import PY, REPO, run_tool, tiny_run_options

TOOL = REPO / 'tools' / 'analysis_tools' / 'time_demo_training.py'
SET_BY_THE_TOOL = ('num_workers', 'max_epochs', 'val_interval', 'checkpoint.interval')


def test_rows_per_setting_and_equal_losses(tiny_demo_root, tmp_path):
    options = [o for o in tiny_run_options(tiny_demo_root, epochs=2)
               if not any(key in o for key in SET_BY_THE_TOOL)]
    out = tmp_path / 'training.md'
    run_tool([PY, TOOL, '--workers', '0', '1', '--threads', '2', '--epochs', '2',
              '--out', out, '--cfg-options', *options])
    rows = [r.strip('|').split('|') for r in out.read_text().splitlines()
            if re.match(r'\| \d', r)]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [('0', '2'), ('1', '2')]
    assert all(float(r[2]) > 0 and float(r[5]) > 0 for r in rows)
    assert [r[6].strip() for r in rows] == ['yes', 'yes']
