"""tools/deployment/export.py writes and checks an ONNX file; tools/infer.py
runs it with the masks of the PyTorch model; bad input is named."""
import importlib.util
import json
import re
import sys

import cv2
import numpy as np
import pytest

from conftest import PY, REPO, run_tool

sys.path.insert(0, str(REPO / 'tests' / 'test_deployment'))
from deployment_helpers import WINDOW_FLAGS, write_work_dir  # noqa: E402

EXPORT = REPO / 'tools' / 'deployment' / 'export.py'
INFER = REPO / 'tools' / 'infer.py'


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return write_work_dir(tmp_path_factory.mktemp('export_tool'))


@pytest.fixture(scope='module')
def scans(tiny_demo_root, tmp_path_factory):
    """Two demo images and a 210 x 170 one (several windows, cut borders)."""
    folder = tmp_path_factory.mktemp('scans')
    sources = sorted((tiny_demo_root / 'img_dir' / 'train').glob('*.png'))[:2]
    for path in sources:
        (folder / path.name).write_bytes(path.read_bytes())
    demo = cv2.imread(str(sources[0]))
    cv2.imwrite(str(folder / 'large.png'), np.pad(demo, ((0, 82), (0, 42), (0, 0)),
                                                  mode='wrap'))
    return folder


@pytest.fixture(scope='module')
def onnx_export(work_dir, scans, tmp_path_factory):
    out = tmp_path_factory.mktemp('onnx') / 'model.onnx'
    proc = run_tool([PY, EXPORT, work_dir, '--format', 'onnx', '--out', out, '--image',
                     scans / 'large.png', '--cfg-options'] + WINDOW_FLAGS)
    return out, proc.stdout


def test_export_writes_and_checks_the_file(onnx_export, scans):
    out, stdout = onnx_export
    assert out.is_file()
    assert f'wrote {out} (onnx, dynamic height and width, any batch' in stdout
    check = re.search(r'check on (\S+) \(inputs 2x3x128x128, 1x3x96x160\): max \|logit '
                      r'difference\| (\S+) .* class differs at 0 of (\d+) pixels', stdout)
    assert check, stdout
    assert check.group(1) == str(scans / 'large.png')
    assert float(check.group(2)) < 1e-4
    assert int(check.group(3)) == 2 * 128 * 128 + 96 * 160
    assert 'check passed' in stdout


def test_infer_with_onnx_gives_the_pytorch_masks(onnx_export, work_dir, scans, tmp_path):
    out, _ = onnx_export
    proc = run_tool([PY, INFER, scans, '--model', out, '--out', tmp_path / 'onnx', '--bf16'])
    assert '3 of 3 images segmented' in proc.stdout
    assert '--bf16 ignored: an exported model computes in float32' in proc.stderr
    run_tool([PY, INFER, scans, '--model', work_dir, '--out', tmp_path / 'torch',
              '--cfg-options'] + WINDOW_FLAGS)
    masks = sorted(p.name for p in (tmp_path / 'torch' / 'masks').iterdir())
    assert masks == sorted(p.name for p in scans.iterdir())
    classes_seen = set()
    for name in masks:
        expected = cv2.imread(str(tmp_path / 'torch' / 'masks' / name), cv2.IMREAD_UNCHANGED)
        got = cv2.imread(str(tmp_path / 'onnx' / 'masks' / name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        classes_seen |= set(np.unique(expected).tolist())
    assert classes_seen == {0, 1}
    summaries = [json.loads((tmp_path / d / 'summary.json').read_text())
                 for d in ('onnx', 'torch')]
    assert summaries[0]['classes'] == summaries[1]['classes'] == ['Clean', 'Damage']
    assert summaries[0]['images'] == summaries[1]['images']


def test_infer_names_a_missing_onnx_file(scans, tmp_path):
    missing = tmp_path / 'missing.onnx'
    proc = run_tool([PY, INFER, scans, '--model', missing, '--out', tmp_path / 'o'],
                    check=False)
    assert proc.returncode != 0 and f'{missing}: no such file' in proc.stderr


def test_bad_model_path_and_existing_out_are_named(work_dir, tmp_path):
    missing = tmp_path / 'no_such_run'
    proc = run_tool([PY, EXPORT, missing, '--format', 'onnx', '--out', tmp_path / 'm.onnx'],
                    check=False)
    assert proc.returncode != 0
    assert f'model {missing}: no such work dir or config file' in proc.stderr
    existing = tmp_path / 'old.onnx'
    existing.write_bytes(b'keep')
    proc = run_tool([PY, EXPORT, work_dir, '--format', 'onnx', '--out', existing], check=False)
    assert proc.returncode != 0 and f'{existing} exists; use --force' in proc.stderr
    assert existing.read_bytes() == b'keep'


def test_dynamic_size_on_coat_is_refused(tmp_path):
    out = tmp_path / 'coat.onnx'
    proc = run_tool([PY, EXPORT, REPO / 'configs' / 'demo' / 'coat_lite_small_upernet_demo.py',
                     '--format', 'onnx', '--out', out, '--input-size', 'dynamic',
                     '--cfg-options', 'model.backbone.model_name=coat_lite_tiny',
                     'model.decode_head.in_channels=None'], check=False)
    assert proc.returncode != 0 and not out.exists()
    assert ('coat_lite_tiny is built for one input size, 128x128 (backbone img_size): it '
            'cannot be exported to onnx with a dynamic height and width') in proc.stderr


def test_a_failed_check_exits_1(monkeypatch, tmp_path, capsys):
    """The tool's verdict: a result beyond --max-changed is exit status 1."""
    from artseg_mm.deployment import CheckResult, ExportInfo
    spec = importlib.util.spec_from_file_location('export_tool', EXPORT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'm.onnx')
    monkeypatch.setattr(tool, 'init_model', lambda *a, **k: type('M', (), {'cfg': None})())
    monkeypatch.setattr(tool, 'export_model', lambda *a: ExportInfo(out, 'onnx', None,
                                                                     (128, 128)))
    monkeypatch.setattr(tool, 'load_check_image', lambda cfg, path: (None, 'img.png'))
    monkeypatch.setattr(tool, 'ExportedSegmentor', lambda path: None)
    changed = CheckResult(shapes=[(2, 128, 128)], changed_pixels=50, pixels=32768)
    monkeypatch.setattr(tool, 'compare_exported', lambda *a: changed)
    assert tool.main(['run', '--format', 'onnx', '--out', out]) == 1
    err = capsys.readouterr().err
    assert 'check FAILED: 0.1526% of pixels change class, more than --max-changed 0.1%' in err
    assert tool.main(['run', '--format', 'onnx', '--out', out, '--max-changed', '0.2']) == 0
