"""benchmarks.table: rows of data to markdown, one way for every benchmark."""
import sys
from dataclasses import dataclass

import pytest

from conftest import REPO

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks.table import Column, markdown_table, percent, print_report, times  # noqa: E402

pytestmark = pytest.mark.bench


@dataclass
class Row:
    name: str
    seconds: float
    ratio: float = None


def test_rows_of_dataclasses_or_dicts_become_one_table():
    columns = [Column('name', 'name'), Column('time (s)', 'seconds', '.2f'),
               Column('ratio', 'ratio', times()),
               Column('share', lambda r: r['seconds'] * 10 if isinstance(r, dict)
                      else r.seconds * 10, percent('.1f'))]
    for rows in ([Row('a', 1.234, 0.5), Row('b', 2.0)],
                 [dict(name='a', seconds=1.234, ratio=0.5), dict(name='b', seconds=2.0,
                                                                  ratio=None)]):
        assert markdown_table(rows, columns) == [
            '| name | time (s) | ratio | share |', '|---|---|---|---|',
            '| a | 1.23 | 0.50x | 12.3% |', '| b | 2.00 | - | 20.0% |']


def test_text_shows_as_it_is_and_no_rows_leave_the_header():
    columns = [Column('value', 'value', '.1f')]
    assert markdown_table([dict(value='not built')], columns)[-1] == '| not built |'
    assert markdown_table([], columns) == ['| value |', '|---|']


def test_report_ends_with_its_command_and_goes_to_out(tmp_path, capsys):
    out = tmp_path / 'report.md'
    print_report(['| a |', '|---|'], 'python -m benchmarks.x --y', str(out))
    assert out.read_text() == '| a |\n|---|\n\ncommand: python -m benchmarks.x --y\n'
    assert capsys.readouterr().out == out.read_text()
