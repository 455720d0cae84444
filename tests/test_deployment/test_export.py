"""Exported files (ONNX, TorchScript, torch.export) compute the PyTorch model's
logits and masks, carry its config and classes, and bad input is named."""
import numpy as np
import pytest
import torch

from deployment_helpers import COAT_CONFIG, COAT_OPTIONS, WINDOW_OPTIONS, write_work_dir


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return write_work_dir(tmp_path_factory.mktemp('export'))


@pytest.fixture(scope='module')
def model(work_dir):
    from artseg_mm.apis import init_model
    return init_model(str(work_dir), cfg_options=WINDOW_OPTIONS)


@pytest.fixture(scope='module')
def onnx_file(model, tmp_path_factory):
    from artseg_mm.deployment import export_model
    path = tmp_path_factory.mktemp('onnx') / 'model.onnx'
    info = export_model(model, 'onnx', str(path))
    assert info.fixed_size is None and info.example_size == (128, 128)
    return path


@pytest.fixture(scope='module')
def image(tiny_demo_root):
    """A 200 x 230 image (a demo image wrapped): 2 x 3 windows of 128 px."""
    import cv2
    demo = cv2.imread(str(sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0]))
    return np.pad(demo, ((0, 200 - demo.shape[0]), (0, 230 - demo.shape[1]), (0, 0)),
                  mode='wrap')


def test_onnx_logits_equal_pytorch_at_two_sizes(model, onnx_file, image):
    import onnxruntime as ort

    from artseg_mm.deployment import ExportedSegmentor, compare_exported
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    x = torch.randn(3, 3, 100, 140, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.encode_decode(x, [dict(img_shape=x.shape[2:])])
    got = session.run(['logits'], {'inputs': x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-4)

    result = compare_exported(model, ExportedSegmentor(onnx_file), image)
    assert result.shapes == [(2, 128, 128), (1, 96, 160)]
    assert result.pixels == 2 * 128 * 128 + 96 * 160
    assert result.max_abs_diff < 1e-4 < result.max_abs_logit
    assert result.changed_pixels == 0 and result.passed()


def test_onnx_carries_config_classes_and_input_size(model, onnx_file):
    import onnx

    from artseg_mm.deployment import ExportedSegmentor
    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert props['artseg_mm.input_size'] == 'dynamic'
    assert props['artseg_mm.source'].endswith('best_mIoU_epoch_1.pth')
    exported = ExportedSegmentor(onnx_file)
    assert exported.format == 'onnx' and exported.fixed_size is None
    assert exported.cfg.model.backbone.model_name == 'convnext_atto'
    assert tuple(exported.test_cfg['crop_size']) == (128, 128)
    assert exported.dataset_meta == dict(classes=['Clean', 'Damage'],
                                         palette=[list(c) for c in model.dataset_meta['palette']])
    assert exported.out_channels == 2
    pre = exported.data_preprocessor
    torch.testing.assert_close(pre.mean, model.data_preprocessor.mean)
    torch.testing.assert_close(pre.std, model.data_preprocessor.std)


def test_onnx_masks_equal_pytorch_sliding_windows(model, onnx_file, image):
    from artseg_mm.apis import count_windows, predict_class_ids
    from artseg_mm.deployment import ExportedSegmentor
    windows = ExportedSegmentor(onnx_file).window_model()
    done = []
    got = predict_class_ids(windows, image, progress=done.append)
    expected = predict_class_ids(model, image)
    assert len(np.unique(expected)) == 2
    np.testing.assert_array_equal(got, expected)
    assert sum(done) == count_windows(windows, image.shape) == 2 * 3
    assert done == [2, 2, 2]  # batch_size 2


@pytest.mark.parametrize('fmt', ['torchscript', 'exported'])
def test_torch_formats_round_trip(fmt, model, image, tmp_path):
    from artseg_mm.deployment import FORMATS, ExportedSegmentor, compare_exported, export_model
    path = tmp_path / f'model{FORMATS[fmt]}'
    assert export_model(model, fmt, str(path)).fixed_size is None
    exported = ExportedSegmentor(path)
    assert exported.format == fmt and exported.fixed_size is None
    assert exported.dataset_meta['classes'] == ['Clean', 'Damage']
    assert exported.cfg.model.backbone.model_name == 'convnext_atto'
    result = compare_exported(model, exported, image)
    assert result.shapes == [(2, 128, 128), (1, 96, 160)]
    assert result.max_abs_diff < 1e-5 and result.changed_pixels == 0


def test_fixed_size_encoder_is_exported_fixed_and_refuses_dynamic(image, tmp_path):
    import onnxruntime as ort

    from artseg_mm.apis import init_model
    from artseg_mm.deployment import ExportedSegmentor, compare_exported, export_model
    torch.manual_seed(0)
    model = init_model(str(COAT_CONFIG), cfg_options=COAT_OPTIONS)
    path = tmp_path / 'coat.onnx'
    with pytest.raises(ValueError, match=r'coat_lite_tiny is built for one input size, 64x64 '
                       r'.*cannot be exported to onnx with a dynamic height and width'):
        export_model(model, 'onnx', str(path), input_size='dynamic')
    assert not path.exists()
    assert export_model(model, 'onnx', str(path)).fixed_size == (64, 64)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape[1:] == [3, 64, 64]
    exported = ExportedSegmentor(path)
    assert exported.fixed_size == (64, 64)
    result = compare_exported(model, exported, image)
    assert result.shapes == [(4, 64, 64)]  # batch_size 4; no second size: a fixed-size file
    assert result.max_abs_diff < 1e-4 and result.changed_pixels == 0
    with pytest.raises(ValueError, match=r'coat.onnx takes 64x64 inputs only .* got 48x64: '
                       'an image smaller than the window'):
        exported.forward(torch.zeros(1, 3, 48, 64))
    from artseg_mm.apis import ScanInferencer
    inferencer = ScanInferencer(str(path))
    mask = inferencer(image[:100, :90])  # windows of 64 px: runs
    assert mask.shape == (100, 90) and inferencer.num_windows(image[:100, :90]) == 2 * 2
    # an image smaller than the window is padded to it, as the PyTorch model pads it
    small = inferencer(image[:48])
    assert small.shape == image[:48].shape[:2]
    np.testing.assert_array_equal(small, ScanInferencer(model)(image[:48]))


def test_swin_is_dynamic_except_in_torch_export():
    from mmengine.config import Config

    from artseg_mm.apis import build_segmentor
    from artseg_mm.deployment import resolve_input_size
    from conftest import REPO
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'swin_tiny_upernet_demo.py'))
    model = build_segmentor(cfg)
    assert resolve_input_size(model, 'onnx') is None
    assert resolve_input_size(model, 'torchscript', 'dynamic') is None
    assert resolve_input_size(model, 'exported') == (128, 128)
    with pytest.raises(ValueError, match='torch.export does not finish tracing swin_tiny'):
        resolve_input_size(model, 'exported', 'dynamic')


def test_bad_files_are_named(model, onnx_file, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from artseg_mm.apis import ScanInferencer
    from artseg_mm.deployment import ExportedSegmentor, export_format, export_model
    missing = tmp_path / 'missing.onnx'
    with pytest.raises(FileNotFoundError, match=f'{missing}: no such file'):
        ExportedSegmentor(missing)
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a model')
    with pytest.raises(ValueError, match=f'{garbage}: cannot be read as an ONNX file: .*Protobuf'):
        ExportedSegmentor(garbage)
    bare = tmp_path / 'bare.onnx'
    value = helper.make_tensor_value_info('inputs', TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node('Identity', ['inputs'], ['logits'])], 'g',
                              [value], [helper.make_tensor_value_info(
                                  'logits', TensorProto.FLOAT, [1, 3, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)]), bare)
    with pytest.raises(ValueError, match=f'{bare}: the file lacks the metadata'):
        ExportedSegmentor(bare)
    with pytest.raises(ValueError, match='model.pth: not an exported model'):
        export_format('model.pth')
    with pytest.raises(ValueError, match='model.pt: the onnx format writes .onnx files'):
        export_model(model, 'onnx', str(tmp_path / 'model.pt'))
    with pytest.raises(FileNotFoundError, match='output folder .*nowhere does not exist'):
        export_model(model, 'onnx', str(tmp_path / 'nowhere' / 'model.onnx'))
    with pytest.raises(ValueError, match='holds its weights'):
        ScanInferencer(str(onnx_file), checkpoint='best.pth')


def test_check_fails_beyond_the_tolerance():
    from artseg_mm.deployment import MAX_CHANGED_PERCENT, CheckResult
    assert MAX_CHANGED_PERCENT == 0.1
    assert CheckResult(changed_pixels=1, pixels=1000).passed()  # 0.1%
    result = CheckResult(changed_pixels=2, pixels=1000)
    assert result.changed_percent == pytest.approx(0.2)
    assert not result.passed() and result.passed(0.5)
    assert not CheckResult(pixels=10, finite=False).passed()


def test_check_image_is_the_first_test_image_else_synthetic(model, tiny_demo_root):
    import copy

    from artseg_mm.deployment import default_check_image
    cfg = copy.deepcopy(model.cfg)
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root)
    image, source = default_check_image(cfg)
    first = sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0]
    assert source == str(first) and image.shape == (128, 128, 3) and image.dtype == np.uint8
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root / 'absent')
    image, source = default_check_image(cfg)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert source.startswith('a synthetic 256x256 image') and 'absent' in source


def test_an_exported_file_never_runs_code_from_its_config(onnx_file, tmp_path):
    """The config an exported file carries is JSON read as data: Python text there
    (what older exports held, or a crafted file) is refused and never executed."""
    import json

    import onnx

    from artseg_mm.apis.config_data import ConfigDataError
    from artseg_mm.deployment import ExportedSegmentor
    marker = tmp_path / 'payload_ran'
    model = onnx.load(str(onnx_file))
    config = next(p for p in model.metadata_props if p.key == 'artseg_mm.config')
    assert json.loads(config.value)['model']['backbone']['model_name'] == 'convnext_atto'
    config.value = f"open({str(marker)!r}, 'w').write('ran')\nmodel = dict(type='x')\n"
    crafted = tmp_path / 'crafted.onnx'
    onnx.save(model, str(crafted))
    with pytest.raises(ConfigDataError, match=f'{crafted} .*the config is not JSON'):
        ExportedSegmentor(crafted)
    assert not marker.exists()
