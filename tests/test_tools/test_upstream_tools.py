"""mmseg's own tools (from the installed wheel, a plain interpreter) and our
replacements of the broken ones, on our configs; TensorBoard and a readable
console for training runs."""
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PY, REPO, SMALL_MODEL_OPTIONS, run_tool, tiny_run_options

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402

DEMO_CONFIG = REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo.py'
ANALYSIS = REPO / 'tools' / 'analysis_tools'


def upstream_tool(path: str) -> Path:
    import mmseg
    return Path(mmseg.__file__).parent / '.mim' / 'tools' / path


@pytest.fixture(scope='module')
def tensorboard_run(tiny_demo_root, tmp_path_factory):
    """A one-epoch run of a small demo model with --tensorboard: (work dir, process)."""
    work_dir = tmp_path_factory.mktemp('tb') / 'run'
    proc = run_tool([PY, REPO / 'tools' / 'train.py', DEMO_CONFIG, '--tensorboard',
                     '--work-dir', work_dir, '--cfg-options',
                     *tiny_run_options(tiny_demo_root), *SMALL_MODEL_OPTIONS])
    return work_dir, proc


def test_tensorboard_events_hold_the_loss_and_miou_with_its_interval(tensorboard_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    work_dir, _ = tensorboard_run
    events = list(work_dir.glob('*/vis_data/events.out.tfevents.*'))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    tags = set(accumulator.Tags()['scalars'])
    assert {'loss', 'mIoU', 'mIoU_ci_low', 'mIoU_ci_high'} <= tags
    # the local backend is kept: the same validation mIoU in scalars.json
    scalars = [json.loads(line) for path in work_dir.glob('*/vis_data/scalars.json')
               for line in path.read_text().splitlines()]
    local_miou = [r['mIoU'] for r in scalars if 'mIoU' in r]
    assert local_miou and [e.value for e in accumulator.Scalars('mIoU')] == pytest.approx(
        local_miou, abs=1e-4)
    low, high = (accumulator.Scalars(k)[-1].value for k in ('mIoU_ci_low', 'mIoU_ci_high'))
    assert low <= local_miou[-1] <= high


def test_console_leaves_the_config_and_parameter_groups_to_the_log_file(tensorboard_run):
    work_dir, proc = tensorboard_run
    console = proc.stdout + proc.stderr
    log_file = next(work_dir.glob('*/*.log'))
    logged = log_file.read_text()
    for marker in ('Config:', 'paramwise_options --', 'Hooks will be executed'):
        assert marker in logged and marker not in console, marker
    assert 'Epoch(train)' in console and 'mIoU' in console
    assert 'The prefix is not set' not in console + logged
    assert 'Warning' not in console, console  # none of mmseg's that do not apply
    assert len(console.splitlines()) < len(logged.splitlines()) / 3


def test_upstream_analyze_logs_plots_our_log(tensorboard_run, tmp_path):
    work_dir, _ = tensorboard_run
    log_json = next(p for p in work_dir.glob('*/vis_data/*.json') if p.name != 'scalars.json')
    out = tmp_path / 'loss.png'
    run_tool([PY, upstream_tool('analysis_tools/analyze_logs.py'), log_json, '--keys',
              'loss', '--out', out])
    assert cv2.imread(str(out)) is not None


def test_upstream_print_config_runs_from_a_plain_shell(tmp_path):
    # it also dumps the config to example.py in its working directory
    proc = run_tool([PY, upstream_tool('misc/print_config.py'), DEMO_CONFIG], cwd=tmp_path)
    assert "type='ArtSegEncoderDecoder'" in proc.stdout
    assert "runner_type = 'ArtSegRunner'" in proc.stdout


def test_upstream_confusion_matrix_reads_test_masks(tiny_demo_root, tmp_path):
    """confusion_matrix.py reads every file in the prediction folder as a mask:
    the binary ground truth written there stands for a perfect prediction."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmseg.registry import DATASETS
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root)
    init_default_scope('mmseg')
    masks = tmp_path / 'masks'
    masks.mkdir()
    for item in DATASETS.build(cfg.test_dataloader.dataset):
        label = item['data_samples'].gt_sem_seg.data[0].numpy().astype(np.uint8)
        label[label == 255] = 0
        cv2.imwrite(str(masks / Path(item['data_samples'].img_path).name), label)
    run_tool([PY, upstream_tool('analysis_tools/confusion_matrix.py'), DEMO_CONFIG, masks,
              tmp_path / 'cm', '--cfg-options',
              f'test_dataloader.dataset.data_root={tiny_demo_root}'])
    assert cv2.imread(str(tmp_path / 'cm' / 'confusion_matrix.png')) is not None


def test_get_flops_counts_as_mmengine_does():
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.config import Config

    from artseg_mm.apis import build_segmentor
    from mmengine.config import DictAction
    proc = run_tool([PY, ANALYSIS / 'get_flops.py', DEMO_CONFIG, '--shape', '96', '128',
                     '--cfg-options', *SMALL_MODEL_OPTIONS])
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith('Flops:'))
    assert '1 multiply-add = 1 FLOP' in line
    cfg = Config.fromfile(DEMO_CONFIG)
    for option in SMALL_MODEL_OPTIONS:  # parsed as the tool's --cfg-options parses them
        key, value = option.split('=', 1)
        cfg.merge_from_dict({key: DictAction._parse_iterable(value)})
    model = build_segmentor(cfg)
    assert getattr(model, 'auxiliary_head', None) is None
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        expected = get_model_complexity_info(model, inputs=(torch.randn(1, 3, 96, 128),),
                                             show_table=False, show_arch=False)['flops']
    assert float(line.split()[1].rstrip('G')) == pytest.approx(expected / 1e9, abs=1e-3)


def test_get_flops_refuses_a_non_square_shape_for_a_fixed_size_encoder():
    proc = run_tool([PY, ANALYSIS / 'get_flops.py',
                     REPO / 'configs' / 'demo' / 'coat_lite_small_upernet_demo.py',
                     '--shape', '96', '128'], check=False)
    assert proc.returncode != 0 and 'is not square' in proc.stderr


def test_upstream_browse_dataset_writes_one_picture_per_training_sample(tiny_demo_root,
                                                                         tmp_path):
    out = tmp_path / 'browse'
    run_tool([PY, upstream_tool('analysis_tools/browse_dataset.py'), DEMO_CONFIG,
              '--output-dir', out, '--not-show', '--cfg-options',
              f'train_dataloader.dataset.data_root={tiny_demo_root}'])
    train = sorted(p.name for p in (tiny_demo_root / 'img_dir' / 'train').glob('*.png'))
    assert sorted(p.name for p in out.iterdir()) == train
    for name in train:  # the augmented 128 px crop with its ground truth drawn over it
        assert cv2.imread(str(out / name)).shape == (128, 128, 3)


def test_upstream_get_flops_runs_but_misses_the_nnpack_convolutions():
    """mmseg's get_flops.py traces with torch.jit, to which our NNPACK convolutions
    are opaque: it counts fewer FLOPs than ours, which counts them on PyTorch's path."""
    options = ['--cfg-options', *SMALL_MODEL_OPTIONS]
    upstream = run_tool([PY, upstream_tool('analysis_tools/get_flops.py'), DEMO_CONFIG,
                         '--shape', '512', '512', *options])
    ours = run_tool([PY, ANALYSIS / 'get_flops.py', DEMO_CONFIG, '--shape', '512', *options])

    def gflops(text):
        value = next(line for line in text.splitlines() if line.startswith('Flops:'))
        return float(value.split()[1].rstrip('G'))
    assert 0 < gflops(upstream.stdout) < gflops(ours.stdout)


def test_benchmark_with_a_config_is_mmsegs_fps_on_a_small_split(tiny_demo_root, tmp_path):
    """mmseg's benchmark.py reports NaN below 200 images; ours times the split."""
    from mmengine.config import Config
    work_dir = write_work_dir(tmp_path)
    config = work_dir / 'tiny_convnext.py'
    cfg = Config.fromfile(config)  # mmseg's flags have no --cfg-options: the data in the file
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root)
    cfg.test_dataloader.num_workers = 0
    cfg.dump(str(config))
    out = tmp_path / 'fps'
    proc = run_tool([PY, ANALYSIS / 'benchmark.py', config,
                     work_dir / 'best_mIoU_epoch_1.pth', '--work-dir', out,
                     '--repeat-times', '2'])
    result = json.loads(next(out.glob('fps_*.json')).read_text())
    assert result['timed_images'] == 1 and result['warmup_images'] == 1
    assert math.isfinite(result['average_fps']) and result['average_fps'] > 0
    assert np.mean([result['overall_fps_1'], result['overall_fps_2']]) == pytest.approx(
        result['average_fps'], abs=0.01)
    assert 'Average fps of 2 evaluations' in proc.stdout
