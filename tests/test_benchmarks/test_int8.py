"""benchmarks.int8: window rows for ours, onnxruntime fp32 and int8 and smp, and scan
rows whose int8 mask is compared with fp32's (timings are its output, not asserted)."""
import re
import sys

import pytest

from conftest import REPO

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks import int8  # noqa: E402

pytestmark = pytest.mark.bench


def test_rows_name_every_runtime_and_measure_the_int8_scan(tmp_path, capsys):
    out = tmp_path / 'int8.md'
    int8.main(['--window', '64', '--scan-size', '96', '--repeats', '1', '--warmup', '0',
               '--out', out])
    report = out.read_text()
    assert 'int8 kernels:' in report
    for row in ('ours, PyTorch fp32', 'onnxruntime fp32', 'onnxruntime int8',
                'smp UPerNet tu-convnext_tiny fp32', '96x96, onnxruntime int8'):
        assert f'| {row} |' in report, row
    fp32_scan = next(line for line in report.splitlines()
                     if line.startswith('| 96x96, onnxruntime fp32 |'))
    assert fp32_scan.endswith('| 0.000% |')  # the reference of the changed share
    int8_scan = next(line for line in report.splitlines()
                     if line.startswith('| 96x96, onnxruntime int8 |'))
    changed = re.search(r'\| (\d+\.\d{3})% \|$', int8_scan)
    assert changed and 0 <= float(changed.group(1)) <= 100, int8_scan
