"""benchmark.py --overlaps (artseg_mm.analysis.window_overlap): per overlap, the
stride, the scan's windows and mask, and the validation metrics of mmseg's loop."""
import re
import sys

import numpy as np
import pytest

from artseg_mm.analysis.window_overlap import overlap_table, scan_mask, stride_for
from artseg_mm.models.segmentors import slide_windows
from conftest import REPO

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402


def test_stride_for_an_overlap():
    assert [stride_for(512, f) for f in (0, 0.125, 0.25, 1 / 3, 0.5)] == [
        512, 448, 384, 341, 256]
    with pytest.raises(ValueError, match=r'overlap must be in \[0, 1\)'):
        stride_for(512, 1.0)


def test_overlap_table_on_a_tiny_run(tiny_demo_root, tmp_path):
    root = str(tiny_demo_root)
    work_dir = write_work_dir(tmp_path, cfg_options={
        'val_dataloader.dataset.data_root': root, 'test_dataloader.dataset.data_root': root})
    rows = overlap_table(str(work_dir), overlaps=(0.5, 0.0), scan_size=200, window_batch=2)
    table = [r for r in rows if re.match(r'\| \d', r)]
    assert [r.split(' | ')[0:2] for r in table] == [['| 0.000', '64'],
                                                    ['| 0.500', '32']]
    cells = [r.strip('|').split('|') for r in table]
    # windows of a 200 px scan at strides 64 and 32 (64 px windows)
    assert [int(c[2]) for c in cells] == [
        len(slide_windows(200, 200, (64, 64), (s, s))) for s in (64, 32)]
    assert cells[1][4].strip() == '0.000%'  # the largest overlap is the reference
    for c in cells:  # mIoU [low, high] from the validation split
        miou, low, high = map(float, re.findall(r'[\d.]+', c[5]))
        assert low <= miou <= high
    # the mask at overlap 0 is the one infer.py's path gives at that stride
    from artseg_mm.analysis.scan_speed import synthetic_scan
    image = synthetic_scan(200)
    a = scan_mask(str(work_dir), 64, image, 2, False)['mask']
    b = scan_mask(str(work_dir), 32, image, 2, False)['mask']
    changed = float((a != b).mean()) * 100
    assert cells[0][4].strip() == f'{changed:.3f}%'
    assert a.shape == (200, 200) and a.dtype == np.uint8
