"""int8 quantization of an exported ONNX model (artseg_mm.deployment.quantize and
tools/deployment/quantize.py): calibration on real windows, metadata kept, the
classes of a fixed input within the stated share of fp32's, refusals, and inference
on the int8 file at the source size."""
import json

import numpy as np
import pytest

from conftest import PY, REPO, run_tool
from deployment_helpers import WINDOW_OPTIONS, write_work_dir

TOOL = REPO / 'tools' / 'deployment' / 'quantize.py'


@pytest.fixture(scope='module')
def float_file(tmp_path_factory):
    from artseg_mm.apis import init_model
    from artseg_mm.deployment import export_model
    work_dir = write_work_dir(tmp_path_factory.mktemp('quantize'))
    path = work_dir / 'model.onnx'
    export_model(init_model(str(work_dir), cfg_options=WINDOW_OPTIONS), 'onnx', str(path))
    return path


@pytest.fixture(scope='module')
def int8_file(float_file, tiny_demo_root):
    from artseg_mm.deployment.quantize import calibration_images, quantize_onnx
    out = float_file.with_name('model_int8.onnx')
    folder = tiny_demo_root / 'img_dir' / 'train'
    record = quantize_onnx(str(float_file), str(out), calibration_images(str(folder)),
                           f'folder {folder}')
    assert record.images == 4 and record.windows >= 4
    return out


def test_int8_file_keeps_the_metadata_and_records_its_calibration(float_file, int8_file):
    import onnx

    from artseg_mm.deployment.quantize import QUANTIZATION_KEY
    source = {p.key: p.value for p in onnx.load(str(float_file)).metadata_props}
    quantized = {p.key: p.value for p in onnx.load(str(int8_file)).metadata_props}
    assert {k: quantized[k] for k in source} == source
    record = json.loads(quantized[QUANTIZATION_KEY])
    assert record['calibration'].startswith('folder ') and record['images'] == 4
    ops = {node.op_type for node in onnx.load(str(int8_file)).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops  # int8 QDQ graph


def test_int8_classes_agree_with_float32_on_a_fixed_input(float_file, int8_file,
                                                          tiny_demo_root):
    from artseg_mm.deployment.quantize import MAX_CHANGED_PERCENT, measure_agreement
    images = sorted(str(p) for p in (tiny_demo_root / 'img_dir' / 'val').glob('*.png'))
    import cv2
    masks = [cv2.imread(p.replace('img_dir', 'ann_dir'), cv2.IMREAD_UNCHANGED) for p in images]
    truths = [np.where(m == 255, 255, m > 0).astype(np.uint8) for m in masks]  # binary
    agreement = measure_agreement(str(float_file), str(int8_file), images, truths, 2)
    assert agreement.pixels == sum(t.size for t in truths)
    assert agreement.changed_percent <= MAX_CHANGED_PERCENT
    assert agreement.conf_float.shape == agreement.conf_int8.shape == (len(images), 2, 2)


def test_inference_on_the_int8_file_gives_masks_of_the_source_size(int8_file, tiny_demo_root):
    import cv2

    from artseg_mm.apis import ScanInferencer
    image = cv2.imread(str(sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0]))
    wide = np.pad(image, ((0, 72), (0, 102), (0, 0)), mode='wrap')  # 200 x 230: 2 x 3 windows
    mask = ScanInferencer(str(int8_file))(wide)
    assert mask.shape == wide.shape[:2] and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}


def test_a_calibration_folder_without_a_readable_image_is_refused(float_file, tmp_path):
    folder = tmp_path / 'scans'
    folder.mkdir()
    (folder / 'broken.png').write_bytes(b'not a png')
    (folder / 'notes.txt').write_text('no image')
    proc = run_tool([PY, TOOL, float_file, '--out', tmp_path / 'int8.onnx',
                     '--calibration', folder], check=False)
    assert proc.returncode == 2
    assert 'no readable image among 1 image file(s)' in proc.stderr
    assert not (tmp_path / 'int8.onnx').exists()


def test_a_report_of_the_int8_file_says_it_is_int8_and_how_far_from_float32(int8_file):
    from artseg_mm.apis.provenance import model_provenance
    from artseg_mm.deployment import ExportedSegmentor
    from artseg_mm.deployment.quantize import add_to_record
    add_to_record(str(int8_file), agreement=dict(split='data/val', images=2, changed_percent=0.25,
                                                 limit_percent=0.5))
    record = model_provenance(str(int8_file), ExportedSegmentor(str(int8_file)), 'sha')
    assert record['kind'] == 'exported model' and record['quantization']['images'] == 4
    assert ("differ from the float32 model's on 0.25% of the pixels of data/val"
            in record['limitations'][-1])


def test_many_images_give_one_window_each_from_images_spread_evenly(float_file, tiny_demo_root):
    from artseg_mm.deployment import ExportedSegmentor
    from artseg_mm.deployment.quantize import WindowCalibration, calibration_images
    images = calibration_images(str(tiny_demo_root / 'img_dir' / 'train'))
    reader = WindowCalibration(ExportedSegmentor(str(float_file)), images, max_windows=2)
    assert reader.images == [images[0], images[-1]] and len(reader.windows) == 2


def test_an_image_under_the_window_is_padded_with_zeros_after_normalisation(float_file, tmp_path):
    import cv2
    from artseg_mm.deployment import ExportedSegmentor
    from artseg_mm.deployment.quantize import WindowCalibration
    path = tmp_path / 'small.png'
    cv2.imwrite(str(path), np.full((40, 60, 3), 200, np.uint8))
    window, = WindowCalibration(ExportedSegmentor(str(float_file)), [str(path)]).windows
    assert window.shape == (1, 3, 128, 128)
    assert np.all(window[:, :, 40:, :] == 0) and np.all(window[:, :, :, 60:] == 0)
    assert np.all(window[:, :, :40, :60] > 0)  # 200 lies above every channel's mean


def test_the_float32_file_itself_is_not_a_place_for_the_int8_file(float_file):
    proc = run_tool([PY, TOOL, float_file, '--out', float_file, '--force'], check=False)
    assert proc.returncode == 2 and '--out is the float32 model itself' in proc.stderr


def test_unknown_float_nodes_are_refused_before_anything_is_written(float_file, tmp_path,
                                                                   tiny_demo_root):
    out = tmp_path / 'int8.onnx'
    proc = run_tool([PY, TOOL, float_file, '--out', out, '--calibration',
                     tiny_demo_root / 'img_dir' / 'train', '--float-nodes', '/no/such/Conv'],
                    check=False)
    assert proc.returncode == 2 and 'no node named /no/such/Conv' in proc.stderr
    assert not out.exists()
