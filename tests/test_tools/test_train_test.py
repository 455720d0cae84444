"""End to end: tools/train.py and tools/test.py on each config, tiny and on CPU."""
import os.path as osp
from pathlib import Path

import cv2
import pytest

from conftest import PY, REPO, read_scalars, run_tool, tiny_run_options

DEMO_CONFIGS = [
    'convnext_tiny_upernet', 'swin_tiny_upernet', 'coat_lite_small_upernet',
    'resnet50_unet'
]


@pytest.mark.parametrize('name', DEMO_CONFIGS)
def test_config_trains_evaluates_and_shows(name, tiny_demo_root, tmp_path):
    config = REPO / 'configs' / 'demo' / f'{name}_demo.py'
    work_dir = tmp_path / name
    run_tool([PY, REPO / 'tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', *tiny_run_options(tiny_demo_root)])
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    assert osp.basename(checkpoint) == 'epoch_1.pth'
    val_records = [r for r in read_scalars(work_dir) if 'mIoU' in r]
    assert val_records, 'validation wrote no mIoU'
    assert 0.0 <= val_records[-1]['mIoU'] <= 100.0

    show_dir = tmp_path / 'show'
    run_tool([PY, REPO / 'tools/test.py', config, checkpoint, '--work-dir',
              work_dir, '--show-dir', show_dir, '--cfg-options',
              *tiny_run_options(tiny_demo_root)])
    val_images = sorted(p.stem for p in (tiny_demo_root / 'img_dir/val').glob('*.png'))
    overlays = sorted(show_dir.glob('*.png'))
    assert [p.stem for p in overlays] == val_images
    for overlay in overlays:
        picture = cv2.imread(str(overlay))
        image = cv2.imread(str(tiny_demo_root / 'img_dir/val' / overlay.name))
        # image | ground truth | prediction
        assert picture.shape == (image.shape[0], 3 * image.shape[1], 3)


def test_train_without_data_says_how_to_make_it(tmp_path):
    proc = run_tool([PY, REPO / 'tools/train.py',
                     REPO / 'configs/swin_tiny_upernet_artefact.py',
                     '--work-dir', tmp_path / 'work'], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    message = proc.stderr
    assert 'data/artefact' in message
    assert 'make_demo_data.py' in message
    assert 'dataset_converters/artefact.py' in message


def test_amp_on_cpu_trains_with_a_message(tiny_demo_root, tmp_path):
    work_dir = tmp_path / 'amp'
    proc = run_tool([PY, REPO / 'tools/train.py',
                     REPO / 'configs/demo/convnext_tiny_upernet_demo.py', '--amp',
                     '--work-dir', work_dir, '--cfg-options',
                     *tiny_run_options(tiny_demo_root), 'train_cfg.val_interval=5'])
    log = proc.stdout + proc.stderr
    assert '--amp: no CUDA device' in log
    assert (work_dir / 'epoch_1.pth').is_file()


def test_upstream_mmseg_tools_run_our_config(tiny_demo_root, tmp_path):
    """mmseg 1.2.2's own tools/train.py and test.py take our configs unchanged."""
    import mmseg
    upstream = Path(mmseg.__file__).parent / '.mim' / 'tools'
    config = REPO / 'configs/demo/convnext_tiny_upernet_demo.py'
    work_dir = tmp_path / 'upstream'
    run_tool([PY, upstream / 'train.py', config, '--work-dir', work_dir,
              '--cfg-options', *tiny_run_options(tiny_demo_root)])
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()
    show_dir = tmp_path / 'upstream_show'
    run_tool([PY, upstream / 'test.py', config, checkpoint, '--work-dir', work_dir,
              '--show-dir', show_dir, '--cfg-options',
              *tiny_run_options(tiny_demo_root)])
    assert len(list(show_dir.glob('*.png'))) == 2
