"""The training tools on a GPU: tools/train.py --amp and dist_train.sh (NCCL)."""
import pytest

from artseg_mm.checkpoints import load_checkpoint_file
from conftest import (PY, REPO, SMALL_MODEL_OPTIONS, dist_run_options, free_port,
                      run_tool, tiny_run_options)

pytestmark = pytest.mark.cuda

CONFIG = REPO / 'configs/demo/convnext_tiny_upernet_demo.py'


def test_train_tool_amp_on_cuda_writes_a_checkpoint(tiny_demo_root, tmp_path):
    work_dir = tmp_path / 'amp'
    # one epoch of the demo config (train_cfg.max_epochs=1 among the options)
    proc = run_tool([PY, REPO / 'tools/train.py', CONFIG, '--amp', '--work-dir', work_dir,
                     '--cfg-options', *tiny_run_options(tiny_demo_root, epochs=1)])
    assert '--amp: fp16 mixed precision on CUDA.' in proc.stdout + proc.stderr
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    assert checkpoint['meta']['iter'] == 2  # 4 images, batch 2
    # the optimizer wrapper was AMP's: it saved its loss scaler
    assert checkpoint['optimizer']['loss_scaler']['scale'] > 0


def test_dist_train_one_gpu_with_nccl(tiny_demo_root, tmp_path):
    work_dir = tmp_path / 'nccl'
    proc = run_tool(['bash', REPO / 'tools/dist_train.sh', CONFIG, '1',
                     '--work-dir', work_dir, '--cfg-options',
                     *dist_run_options(tiny_demo_root), *SMALL_MODEL_OPTIONS],
                    env_extra={'PYTHON': PY, 'PORT': str(free_port()),
                               'NCCL_DEBUG': 'INFO'})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert "'backend': 'nccl'" in log  # the config's dist_cfg, not CPU gloo
    assert 'NCCL INFO' in log  # NCCL itself ran (DDP's parameter broadcast)
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    assert load_checkpoint_file(str(work_dir / 'epoch_1.pth'))['meta']['iter'] == 2
