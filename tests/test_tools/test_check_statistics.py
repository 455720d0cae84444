"""tools/analysis_tools/check_statistics.py: the calibration table anyone can rerun."""
import re

from conftest import PY, REPO, run_tool

TOOL = REPO / 'tools' / 'analysis_tools' / 'check_statistics.py'


def test_prints_error_rates_and_coverage_per_number_of_images(tmp_path):
    out = tmp_path / 'calibration.md'
    proc = run_tool([PY, TOOL, '--images', '10', '12', '--reps', '20', '--out', out])
    rows = re.findall(r'^\| (\d+) \|(.*)\|$', proc.stdout, flags=re.M)
    assert [int(n) for n, _ in rows] == [10, 12]
    for _, cells in rows:  # six rates, each a percentage of 20 replications
        rates = [float(c.strip().rstrip('%')) for c in cells.split('|')]
        assert len(rates) == 6 and all(0 <= r <= 100 and (r * 20) % 100 < 1e-6 for r in rates)
    assert re.search(r'3 seeds each, 10 images \(between-seed SD of mIoU \d+\.\d points',
                     proc.stdout)
    assert out.read_text().strip() == proc.stdout.strip()


def test_refuses_settings_it_cannot_simulate():
    proc = run_tool([PY, TOOL, '--reps', '3'], check=False)
    assert proc.returncode == 2 and '--reps must be >= 10' in proc.stderr
