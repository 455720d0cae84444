"""benchmarks.scan: its three methods give one mask, fetch no weights, and its
rows say how many pixels each run changed."""
import sys

import numpy as np
import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402

if str(REPO) not in sys.path:  # benchmarks/ sits beside the package, not installed
    sys.path.append(str(REPO))
from benchmarks import scan  # noqa: E402

pytestmark = pytest.mark.bench


def test_scan_speed_methods_agree(tmp_path):
    """The scan benchmark's three methods give one mask on the same model."""
    work_dir = write_work_dir(tmp_path)
    results = {m: scan.run_method(m, str(work_dir), None, 96) for m in scan.METHODS}
    for method, result in results.items():
        assert result['mask'].shape == (96, 96) and result['windows'] == 4, method
        assert result['seconds'] > 0 and result['peak_mib'] >= result['base_mib'], method
        np.testing.assert_array_equal(result['mask'], results['infer']['mask'], method)


def test_scan_speed_on_an_untrained_config_fetches_no_weights(tmp_path, monkeypatch):
    """The scan benchmark on a config alone (pretrained=True, no checkpoint): no
    method, MMSegInferencer's own build included, asks timm for pretrained weights."""
    import timm.models._builder as timm_builder
    from mmengine import Config

    def no_fetch(*args, **kwargs):
        raise AssertionError('pretrained weights were fetched')
    monkeypatch.setattr(timm_builder, 'load_pretrained', no_fetch)
    cfg = Config.fromfile(str(write_work_dir(tmp_path) / 'tiny_convnext.py'))
    cfg.model.backbone.pretrained = True
    cfg.dump(str(tmp_path / 'untrained.py'))
    result = scan.run_method('mmseg_inferencer', str(tmp_path / 'untrained.py'), None, 64)
    assert result['mask'].shape == (64, 64) and result['windows'] == 1


def test_rows_compare_each_mask_with_the_first(monkeypatch):
    """One row per run, infer's window batches first (bf16 where available),
    then mmseg's two ways; pixels changed against the first run's mask."""
    settings = scan.build_parser().parse_args(['--scan-size', '8', '--slide-batch-sizes',
                                               '1', '4'])
    monkeypatch.setattr(scan, 'bf16_available', lambda device: True)
    specs = []

    def child(spec):
        specs.append(spec)
        mask = np.zeros((8, 8), dtype=np.uint8)
        mask[:len(specs) - 1] = 1  # each run changes one more row of 8
        np.save(spec['mask_path'], mask)
        return dict(windows=1, seconds=2.0, mpix_per_s=0.5, base_mib=100.0, peak_mib=150.0)

    rows = scan.measure_scan(settings, torch.device('cpu'), child)
    assert [(r.method, r.window_batch, r.precision) for r in rows] == [
        ('infer', 1, 'fp32'), ('infer', 4, 'fp32'), ('infer', 4, 'bf16'),
        ('mmseg_slide', None, 'fp32'), ('mmseg_inferencer', None, 'fp32')]
    assert [r.changed_percent for r in rows] == [0.0, 12.5, 25.0, 37.5, 50.0]
    assert all(r.peak_above_model_mib == 50.0 for r in rows)
    assert [s['size'] for s in specs] == [8] * 5
    table = scan.report_lines(rows, settings, torch.device('cpu'))
    assert table[:2] == ['one 8x8 scan, model configs/convnext_tiny_upernet_artefact.py', '']
    assert table[4] == '|---|---|---|---|---|---|---|---|'
    assert table[6] == '| infer | 4 | fp32 | 1 | 2.0 | 0.500 | 50 | 12.5000% |'
    assert table[8] == '| mmseg_slide | config | fp32 | 1 | 2.0 | 0.500 | 50 | 37.5000% |'
