"""A killed run resumes to the uninterrupted result; dist_train.sh with 2 CPU
processes, on one node and as two nodes."""
import os
import signal
import subprocess
import textwrap

import pytest
import torch

from artseg_mm.checkpoints import load_checkpoint_file
from conftest import (PY, REPO, SMALL_MODEL_OPTIONS, dist_run_options, free_port,
                      read_scalars, run_tool, tiny_run_options)

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
        'train_dataloader.dataset.pipeline.2.crop_size=(96,96)',
        # the last checkpoint is all a resume needs (each is ~450 MB)
        'default_hooks.checkpoint.max_keep_ckpts=1']
    return run_tool([PY, REPO / 'tools/train.py', config, '--work-dir', work_dir,
                     *extra, '--cfg-options', *options], env_extra=env_extra,
                    check=check)


def final_state(work_dir):
    return load_checkpoint_file(str(work_dir / f'epoch_{EPOCHS}.pth'))


@pytest.mark.e2e
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
                     *dist_run_options(tiny_demo_root)],
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


def test_dist_train_as_two_nodes(tiny_demo_root, tmp_path):
    """Two dist_train.sh launches, as on two nodes (NNODES=2, NODE_RANK 0 and 1,
    one process each), meet at MASTER_ADDR:PORT and train as one job."""
    work_dir = tmp_path / 'two_nodes'
    command = ['bash', str(REPO / 'tools/dist_train.sh'), str(CONFIG), '1',
               '--work-dir', str(work_dir), '--cfg-options',
               *dist_run_options(tiny_demo_root), *SMALL_MODEL_OPTIONS]
    port = str(free_port())
    nodes, logs = [], []
    for rank in (0, 1):
        logs.append(tmp_path / f'node{rank}.log')
        # CPU processes (gloo), also on a GPU host: one GPU takes one rank only
        env = dict(os.environ, PYTHON=PY, NNODES='2', NODE_RANK=str(rank),
                   MASTER_ADDR='127.0.0.1', PORT=port, OMP_NUM_THREADS='1',
                   PYTHONUNBUFFERED='1', CUDA_VISIBLE_DEVICES='')
        with open(logs[-1], 'w') as log:
            nodes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                          stderr=subprocess.STDOUT,
                                          start_new_session=True))
    try:
        codes = [node.wait(timeout=600) for node in nodes]
    finally:
        for node in nodes:  # a node left waiting for its peer: end its group
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], '\n'.join(f'--- node {r} (exit {c}) ---\n{t[-4000:]}'
                                      for r, (c, t) in enumerate(zip(codes, texts)))
    assert 'Distributed training: True' in texts[0]
    assert 'GPU number: 2' in texts[0]  # mmengine's name for the world size
    # only rank 0 writes checkpoints, once
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    # 4 images over 2 ranks x batch 2: one iteration, the epoch complete
    assert checkpoint['meta']['iter'] == 1 and checkpoint['meta']['epoch'] == 1


SAVE_KILLER = textwrap.dedent('''
    """Test-only: SIGKILL this process halfway through writing one checkpoint file."""
    import os
    import signal
    import tempfile

    from artseg_mm.checkpoints import atomic_io

    real_put = atomic_io.AtomicLocalBackend.put


    def put(self, obj, filepath):
        if os.path.basename(str(filepath)) == os.environ['KILL_DURING_SAVE_OF']:
            fd, _ = tempfile.mkstemp(prefix=f'.{os.path.basename(filepath)}.', suffix='.tmp',
                                     dir=os.path.dirname(os.path.abspath(filepath)))
            os.write(fd, obj[:len(obj) // 2])
            os.fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_put(self, obj, filepath)


    atomic_io.AtomicLocalBackend.put = put
''')


def tiny_train(work_dir, data_root, epochs, *options, config=CONFIG, extra=(), env_extra=None,
               check=True):
    return run_tool([PY, REPO / 'tools/train.py', config, '--work-dir', work_dir, *extra,
                     '--cfg-options', *tiny_run_options(data_root, epochs=epochs), *options],
                    env_extra=env_extra, check=check)


@pytest.mark.e2e
def test_kill_during_a_save_with_the_demo_checkpoint_settings(tiny_demo_root, tmp_path):
    """max_keep_ckpts=1 (the demo configs'): the old checkpoint outlives the killed save."""
    (tmp_path / 'hookmod').mkdir()
    (tmp_path / 'hookmod' / 'save_killer.py').write_text(SAVE_KILLER)
    killer_config = tmp_path / 'killed_demo.py'
    killer_config.write_text(textwrap.dedent(f'''
        _base_ = [{str(CONFIG)!r}]
        custom_imports = dict(imports=['artseg_mm', 'save_killer'], allow_failed_imports=False)
    '''))
    keep_one = 'default_hooks.checkpoint.max_keep_ckpts=1'
    work = tmp_path / 'run'
    proc = tiny_train(work, tiny_demo_root, 3, keep_one, config=killer_config, check=False,
                      env_extra={'PYTHONPATH': str(tmp_path / 'hookmod'),
                                 'KILL_DURING_SAVE_OF': 'epoch_2.pth'})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert load_checkpoint_file(str(work / 'epoch_1.pth'))['meta']['epoch'] == 1
    assert list(work.glob('.epoch_2.pth.*.tmp')) and not (work / 'epoch_2.pth').exists()
    assert (work / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')

    resumed = tiny_train(work, tiny_demo_root, 3, keep_one, extra=['--resume'])
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1, iter: 2' in log and 'left by a checkpoint save that was killed' in log
    assert not list(work.glob('.*.tmp'))
    assert sorted(p.name for p in work.glob('epoch_*.pth')) == ['epoch_3.pth']


def test_resume_starts_afresh_without_a_checkpoint_and_prefers_its_own(tiny_demo_root,
                                                                        tmp_path):
    work = tmp_path / 'run'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'epoch_7.pth'))  # deleted by hand
    fresh = tiny_train(work, tiny_demo_root, 1, extra=['--resume'])
    assert 'training from scratch' in fresh.stdout + fresh.stderr
    assert (work / 'epoch_1.pth').is_file()
    # a load_from in the config (e.g. a dump mmseg's test tool wrote) does not win
    resumed = tiny_train(work, tiny_demo_root, 2, f'load_from={tmp_path / "other.pth"}',
                         extra=['--resume'])
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1, iter: 2' in log
    assert f"the config's load_from='{tmp_path / 'other.pth'}' is not used" in log
    assert load_checkpoint_file(str(work / 'epoch_2.pth'))['meta']['iter'] == 4
