"""The one place where benchmark results become text: rows of data (dataclasses or
dicts) to a markdown table, and the report printed with the command that made it.

Measuring functions return rows, so tests check numbers rather than parse text
and every table is formatted alike.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Union


@dataclass(frozen=True)
class Column:
    """One column: its ``header``, the row's field ``key`` (or a function of the
    row) and ``fmt``, a format spec (``'.2f'``) or a function of the value to text.
    A missing value (None) shows as ``-``; text shows as it is."""
    header: str
    key: Union[str, Callable[[Any], Any]]
    fmt: Union[str, Callable[[Any], str]] = ''

    def value(self, row) -> Any:
        if callable(self.key):
            return self.key(row)
        return row[self.key] if isinstance(row, Mapping) else getattr(row, self.key)

    def cell(self, row) -> str:
        value = self.value(row)
        if value is None:
            return '-'
        if isinstance(value, str):
            return value
        return self.fmt(value) if callable(self.fmt) else format(value, self.fmt)


def markdown_table(rows: Sequence, columns: Sequence[Column]) -> List[str]:
    """The lines of a markdown table: header, separator, one line per row."""
    lines = ['| ' + ' | '.join(c.header for c in columns) + ' |',
             '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(c.cell(row) for c in columns) + ' |' for row in rows]
    return lines


def times(spec: str = '.2f') -> Callable[[float], str]:
    """A ratio as ``0.85x``."""
    return lambda value: f'{value:{spec}}x'


def percent(spec: str = '.3f') -> Callable[[float], str]:
    """A value already in percent as ``12.500%``."""
    return lambda value: f'{value:{spec}}%'


def print_report(lines: List[str], command: str, out: Optional[str] = None) -> None:
    """Print a benchmark's report with the command that made it, and write it to ``out``."""
    text = '\n'.join([*lines, '', f'command: {command}'])
    print(text)
    if out:
        with open(out, 'w') as f:
            f.write(text + '\n')
