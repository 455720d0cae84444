"""A killed run resumes to the uninterrupted result; dist_train.sh with 2 CPU processes."""
import signal
import textwrap

import torch

from artseg_mm.compat import load_checkpoint_file
from conftest import PY, REPO, read_scalars, run_tool, tiny_run_options

CONFIG = REPO / 'configs/demo/convnext_tiny_upernet_demo.py'
EPOCHS = 3
ITERS_PER_EPOCH = 2  # 4 training images, batch 2

KILLER = textwrap.dedent('''
    """Test-only hook: SIGKILL this process right after a given iteration."""
    import os
    import signal

    from mmengine.hooks import Hook
    from mmseg.registry import HOOKS


    @HOOKS.register_module()
    class KillAfterIterHook(Hook):
        def __init__(self, iteration):
            self.iteration = iteration

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == self.iteration:
                os.kill(os.getpid(), signal.SIGKILL)
''')


def train(work_dir, tiny_demo_root, *extra, config=CONFIG, env_extra=None,
          check=True):
    # deterministic kernels and a fixed seed: CPU runs repeat bit for bit
    options = tiny_run_options(tiny_demo_root, epochs=EPOCHS) + [
        'randomness.seed=0', 'randomness.deterministic=True',
        'train_dataloader.dataset.pipeline.2.crop_size=(96,96)']
    return run_tool([PY, REPO / 'tools/train.py', config, '--work-dir', work_dir,
                     *extra, '--cfg-options', *options], env_extra=env_extra,
                    check=check)


def final_state(work_dir):
    return load_checkpoint_file(str(work_dir / f'epoch_{EPOCHS}.pth'))


def test_killed_run_resumes_to_the_same_result(tiny_demo_root, tmp_path):
    reference = tmp_path / 'uninterrupted'
    train(reference, tiny_demo_root)

    (tmp_path / 'hookmod').mkdir()
    (tmp_path / 'hookmod' / 'killer_hook.py').write_text(KILLER)
    kill_at = 2 * ITERS_PER_EPOCH + 1  # in epoch 3, after epoch 2's checkpoint
    # the same config plus the killer hook (cfg-options cannot append a hook)
    killer_config = tmp_path / 'killed_demo.py'
    killer_config.write_text(textwrap.dedent(f'''
        _base_ = [{str(CONFIG)!r}]
        custom_imports = dict(imports=['artseg_mm', 'killer_hook'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='EpochSeedHook'),
                        dict(type='KillAfterIterHook', iteration={kill_at})]
    '''))
    interrupted = tmp_path / 'interrupted'
    proc = train(interrupted, tiny_demo_root, config=killer_config,
                 env_extra={'PYTHONPATH': str(tmp_path / 'hookmod')}, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert (interrupted / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')
    assert not (interrupted / f'epoch_{EPOCHS}.pth').exists()

    resumed = train(interrupted, tiny_demo_root, '--resume')
    assert 'resumed epoch: 2, iter: 4' in resumed.stdout + resumed.stderr

    expected, got = final_state(reference), final_state(interrupted)
    assert got['meta']['iter'] == expected['meta']['iter'] == EPOCHS * ITERS_PER_EPOCH
    for key, value in expected['state_dict'].items():
        # Same seed, deterministic kernels, per-epoch reseeding: identical
        # floating-point operations, so the weights match bit for bit.
        assert torch.equal(got['state_dict'][key], value), key
    # the learning rate of every iteration after the resume is the scheduled one
    lr_ref = {r['iter']: r['lr'] for r in read_scalars(reference) if 'lr' in r}
    lr_got = {r['iter']: r['lr'] for r in read_scalars(interrupted) if 'lr' in r}
    for it in range(2 * ITERS_PER_EPOCH + 1, EPOCHS * ITERS_PER_EPOCH + 1):
        assert lr_got[it] == lr_ref[it], it


def test_dist_train_two_cpu_processes(tiny_demo_root, tmp_path):
    work_dir = tmp_path / 'dist'
    proc = run_tool(['bash', REPO / 'tools/dist_train.sh', CONFIG, '2',
                     '--work-dir', work_dir, '--cfg-options',
                     *tiny_run_options(tiny_demo_root), 'train_cfg.val_interval=5',
                     'default_hooks.checkpoint.save_best=None'],
                    env_extra={'PYTHON': PY, 'PORT': '29517', 'OMP_NUM_THREADS': '1'})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    # exactly one checkpoint (no best-mIoU copy); mmengine still validates
    # after the last epoch, gathering the metric over both processes
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    assert 'mIoU' in log
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    # 4 images, 2 processes x batch 2: one iteration per epoch
    assert checkpoint['meta']['iter'] == 1
