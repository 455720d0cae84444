"""benchmark.py --overlaps (artseg_mm.analysis.window_overlap): per overlap, the
stride, the scan's windows and mask, and the validation metrics of mmseg's loop."""
import re
import sys

import numpy as np
import pytest

from artseg_mm.analysis.window_overlap import (check_window_sizes, overlap_table, scan_mask,
                                               stride_for)
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
    rows = overlap_table(str(work_dir), overlaps=(0.5, 0.0), scan_size=200, window_batch=2,
                         windows=(96, 64))
    table = [r.strip('|').split('|') for r in rows if re.match(r'\| \d', r)]
    # the config's 64 px windows, then 96 px ones; each at overlap 0 and 1/2
    assert [[c.strip() for c in r[:3]] for r in table] == [
        ['64', '0.000', '64'], ['64', '0.500', '32'], ['96', '0.000', '96'],
        ['96', '0.500', '48']]
    assert [int(c[3]) for c in table] == [
        len(slide_windows(200, 200, (w, w), (s, s))) for w, s in ((64, 64), (64, 32),
                                                                  (96, 96), (96, 48))]
    assert 'vs window 64 at overlap 0.500' in rows[2]
    assert table[1][5].strip() == '0.000%'  # the config's window, largest overlap
    mious = []
    for c in table:  # mIoU [low, high] from the validation split
        miou, low, high = map(float, re.findall(r'[\d.]+', c[6]))
        assert low <= miou <= high
        mious.append(miou)
    # mIoU minus the reference's, paired over the same images, with its interval
    assert table[1][7].strip() == '+0.00 [+0.00, +0.00]'
    for c, miou in zip(table, mious):
        diff, low, high = map(float, re.findall(r'[-+][\d.]+', c[7]))
        assert abs(diff - (miou - mious[1])) <= 0.011 and low <= diff <= high
    # each row's mask is the one infer.py's path gives with its window and stride
    from artseg_mm.analysis.scan_speed import synthetic_scan
    image = synthetic_scan(200)
    reference = scan_mask(str(work_dir), 64, 32, image, 2, False)['mask']
    for (window, stride), row in (((64, 64), table[0]), ((96, 48), table[3])):
        mask = scan_mask(str(work_dir), window, stride, image, 2, False)['mask']
        assert mask.shape == (200, 200) and mask.dtype == np.uint8
        assert row[5].strip() == f'{float((mask != reference).mean()) * 100:.3f}%'


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
