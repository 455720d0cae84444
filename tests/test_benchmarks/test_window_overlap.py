"""benchmarks.window_overlap: per window size and overlap, the stride, the scan's
windows and mask, and the validation metrics of mmseg's loop."""
import sys

import numpy as np
import pytest

from artseg_mm.models.segmentors import slide_windows
from conftest import REPO

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks.scan import synthetic_scan  # noqa: E402
from benchmarks.window_overlap import (check_window_sizes, columns, measure_overlaps,  # noqa: E402
                                       report_lines, scan_mask, stride_for)

pytestmark = pytest.mark.bench


def test_stride_for_an_overlap():
    assert [stride_for(512, f) for f in (0, 0.125, 0.25, 1 / 3, 0.5)] == [
        512, 448, 384, 341, 256]
    with pytest.raises(ValueError, match=r'overlap must be in \[0, 1\)'):
        stride_for(512, 1.0)


def test_overlap_table_on_a_tiny_run(tiny_demo_root, tmp_path):
    root = str(tiny_demo_root)
    work_dir = write_work_dir(tmp_path, cfg_options={
        'val_dataloader.dataset.data_root': root, 'test_dataloader.dataset.data_root': root})
    study = measure_overlaps(str(work_dir), overlaps=(0.5, 0.0), scan_size=200,
                             window_batch=2, windows=(96, 64))
    rows = study.rows
    # the config's 64 px windows, then 96 px ones; each at overlap 0 and 1/2
    assert [(r.window, r.overlap, r.stride) for r in rows] == [
        (64, 0.0, 64), (64, 0.5, 32), (96, 0.0, 96), (96, 0.5, 48)]
    assert [r.windows for r in rows] == [
        len(slide_windows(200, 200, (w, w), (s, s))) for w, s in ((64, 64), (64, 32),
                                                                  (96, 96), (96, 48))]
    assert study.reference == (64, 0.5)
    assert 'vs window 64 at overlap 0.500' in report_lines(study)[2]
    assert rows[1].changed_percent == 0.0  # the config's window, largest overlap
    for r in rows:  # mIoU [low, high] from the validation split
        assert r.miou_low <= r.miou <= r.miou_high
    # mIoU minus the reference's, paired over the same images, with its interval
    assert rows[1].miou_minus_reference == pytest.approx(
        dict(difference=0.0, low=0.0, high=0.0), abs=0.005)
    assert columns(study.reference)[7].cell(rows[1]) == '+0.00 [+0.00, +0.00]'
    for r in rows:
        d = r.miou_minus_reference
        assert abs(d['difference'] - (r.miou - rows[1].miou)) <= 0.011
        assert d['low'] <= d['difference'] <= d['high']
    # each row's mask is the one infer.py's path gives with its window and stride
    image = synthetic_scan(200)
    reference = scan_mask(str(work_dir), 64, 32, image, 2, False)['mask']
    for (window, stride), row in (((64, 64), rows[0]), ((96, 48), rows[3])):
        mask = scan_mask(str(work_dir), window, stride, image, 2, False)['mask']
        assert mask.shape == (200, 200) and mask.dtype == np.uint8
        assert f'{row.changed_percent:.3f}' == f'{float((mask != reference).mean()) * 100:.3f}'


def test_windows_an_encoder_built_for_one_size_cannot_take(tmp_path):
    work_dir = tmp_path / 'swin'
    work_dir.mkdir()
    from mmengine import Config
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'swin_tiny_upernet_demo.py'))
    cfg.dump(str(work_dir / 'swin_tiny_upernet_demo.py'))
    crop = cfg.model.test_cfg.crop_size[0]
    assert check_window_sizes(str(work_dir), [crop]) == crop
    with pytest.raises(ValueError, match=rf'swin_tiny_upernet_demo.py: encoder '
                       rf'swin_tiny\S* is built for {crop} px inputs; windows of '
                       rf'\[{2 * crop}\] px'):
        check_window_sizes(str(work_dir), [crop, 2 * crop])
