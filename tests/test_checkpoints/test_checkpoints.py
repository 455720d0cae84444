"""Checkpoints: weights_only loading, refusal of unsafe pickles, atomic writes, resume."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import artseg_mm  # noqa: F401
from artseg_mm.checkpoints import (AtomicLocalBackend, CorruptCheckpointError,
                                   UnsafeCheckpointError, find_resume_checkpoint,
                                   load_checkpoint_file, state_dict_mismatch)
from conftest import PY, REPO, run_tool


def tiny_runner_cfg(data_root, work_dir, epochs=2, checkpoint_hook=None):
    """A small but complete mmseg run: timm resnet10t + FCN head, ArtSegMetric."""
    pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
        dict(type='RandomCrop', crop_size=(64, 64)),
        dict(type='PackSegInputs')]
    dataset = dict(type='ARTeFACTDataset', data_root=str(data_root),
                   label_mode='binary', pipeline=pipeline)
    return Config(dict(
        default_scope='mmseg',
        work_dir=str(work_dir),
        model=dict(
            type='ArtSegEncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                                   std=[255., 255., 255.], size=(64, 64),
                                   seg_pad_val=255),
            backbone=dict(type='TimmFeatureBackbone', model_name='resnet10t',
                          pretrained=False, out_indices=(3, )),
            decode_head=dict(type='FCNHead', in_channels=256, in_index=0,
                             channels=8, num_convs=1, num_classes=2,
                             norm_cfg=dict(type='BN'),
                             loss_decode=dict(type='DiceFocalLoss'))),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(dataset, data_prefix=dict(img_path='img_dir/train',
                                                   seg_map_path='ann_dir/train'))),
        val_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(dataset, pipeline=[pipeline[0], pipeline[1], pipeline[3]],
                         data_prefix=dict(img_path='img_dir/val',
                                          seg_map_path='ann_dir/val'))),
        val_evaluator=dict(type='ArtSegMetric'),
        optim_wrapper=dict(type='AutoAmpOptimWrapper',
                           optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True)],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1),
        val_cfg=dict(type='ValLoop'),
        default_hooks=dict(
            checkpoint=checkpoint_hook or dict(
                type='SafeCheckpointHook', interval=1, save_best='mIoU', rule='greater'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='EpochSeedHook')],
        randomness=dict(seed=0),
        log_level='WARNING'))


def globals_in(path):
    """GLOBALs a checkpoint names that weights_only loading would refuse."""
    return set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))


def test_runner_checkpoint_loads_weights_only_and_resumes(tiny_demo_root, tmp_path):
    runner = Runner.from_cfg(tiny_runner_cfg(tiny_demo_root, tmp_path / 'a'))
    runner.train()
    last = tmp_path / 'a' / 'epoch_2.pth'
    best = list((tmp_path / 'a').glob('best_mIoU_*.pth'))
    assert len(best) == 1
    for path in (last, best[0]):
        # nothing outside torch's safe set: no numpy, no builtins.getattr, no class
        # of ours
        assert globals_in(path) == set()
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint['meta']['epoch'] == (2 if path == last else int(
            path.stem.rsplit('_', 1)[1]))
        assert isinstance(checkpoint['message_hub']['runtime_info']['best_score'], float)

    # plain torch in a fresh interpreter, nothing of ours imported or allow-listed
    probe = ('import sys, torch; ck = torch.load(sys.argv[1], weights_only=True); '
             'print(sorted(ck), "artseg_mm" in sys.modules)')
    proc = subprocess.run([sys.executable, '-c', probe, str(last)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'message_hub', 'meta'" in proc.stdout and proc.stdout.strip().endswith('False')
    # mmseg's own publish_model.py (from the installed package) handles them
    import mmseg
    publish = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools', 'misc',
                           'publish_model.py')
    proc = subprocess.run([sys.executable, publish, str(last), str(tmp_path / 'pub.pth')],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    published = list(tmp_path.glob('pub-*.pth'))
    assert len(published) == 1 and 'optimizer' not in torch.load(published[0],
                                                                  weights_only=True)

    cfg = tiny_runner_cfg(tiny_demo_root, tmp_path / 'a', epochs=3)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 3 * 2 and resumed.epoch == 3
    # the message hub came back with its history (a working HistoryBuffer)
    assert resumed.message_hub.get_scalar('train/loss').data[0].size > 0


def test_stock_mmengine_checkpoint_is_refused_then_converted(tiny_demo_root, tmp_path):
    hook = dict(type='CheckpointHook', interval=2)
    Runner.from_cfg(tiny_runner_cfg(tiny_demo_root, tmp_path / 'stock',
                                    checkpoint_hook=hook)).train()
    stock = tmp_path / 'stock' / 'epoch_2.pth'
    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_file(str(stock))
    message = str(error.value)
    assert str(stock) in message
    assert 'HistoryBuffer' in message or 'numpy' in message
    assert 'convert_trusted_checkpoint.py' in message

    converted = tmp_path / 'converted.pth'
    tool = REPO / 'tools/misc/convert_trusted_checkpoint.py'
    refused = run_tool([PY, tool, stock, converted], check=False)
    assert refused.returncode == 2 and 'i-trust-this-file' in refused.stderr
    assert not converted.exists()
    run_tool([PY, tool, stock, converted, '--i-trust-this-file'])
    loaded = load_checkpoint_file(str(converted))
    original = torch.load(stock, weights_only=False)
    for key, value in original['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('touch PWNED',))


def test_crafted_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _RunsCode()}, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_file(str(path))
    assert 'system' in str(error.value) and str(path) in str(error.value)
    assert not (tmp_path / 'PWNED').exists()
    # mmengine's loader (used by Runner.load_checkpoint, init_model) goes the same way
    from mmengine.runner import CheckpointLoader
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not (tmp_path / 'PWNED').exists()


def test_a_crafted_pickle_behind_a_url_is_refused_without_running_it(tmp_path, monkeypatch):
    from mmengine.runner import CheckpointLoader
    served = tmp_path / 'served.pth'
    torch.save({'state_dict': {}, 'meta': _RunsCode()}, served)
    fetched = []

    def download(url, path, hash_prefix=None, progress=True):  # the network, for torch.hub
        fetched.append(url)
        shutil.copyfile(served, path)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.chdir(tmp_path)
    url = 'https://example.org/models/evil.pth'
    with pytest.raises(UnsafeCheckpointError, match='system'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert fetched == [url] and (tmp_path / 'hub' / 'checkpoints' / 'evil.pth').is_file()
    assert not (tmp_path / 'PWNED').exists()


def test_empty_and_truncated_checkpoints_are_named(tmp_path):
    """Every loader (mmengine's too: Runner, init_model, the tools) names the file."""
    from mmengine.runner import CheckpointLoader
    full = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}, 'meta': {'epoch': 1}}, full)
    empty, cut = tmp_path / 'empty.pth', tmp_path / 'cut.pth'
    empty.write_bytes(b'')
    cut.write_bytes(full.read_bytes()[:len(full.read_bytes()) // 2])
    with pytest.raises(CorruptCheckpointError, match=rf'{empty} is empty \(0 bytes\)'):
        load_checkpoint_file(str(empty))
    for load in (load_checkpoint_file, CheckpointLoader.load_checkpoint):
        with pytest.raises(CorruptCheckpointError,
                           match=rf'{cut} \({cut.stat().st_size} bytes\) cannot be read: '
                                 r'.*truncated'):
            load(str(cut))


def test_atomic_put_leaves_old_file_when_killed(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    AtomicLocalBackend().put(b'complete old checkpoint', target)
    # A child process is SIGKILLed inside the write, before the rename.
    script = (
        'import os, signal\n'
        'from artseg_mm.checkpoints import atomic_io\n'
        'real_fsync = os.fsync\n'
        'def die(fd):\n'
        '    os.kill(os.getpid(), signal.SIGKILL)\n'
        'os.fsync = die\n'
        f'atomic_io.AtomicLocalBackend().put(b"x" * 10_000_000, {str(target)!r})\n')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True)
    assert proc.returncode == -9
    assert target.read_bytes() == b'complete old checkpoint'


def test_resume_skips_an_empty_pointer_and_a_truncated_file(tmp_path):
    good = {'state_dict': {'w': torch.ones(2)}, 'meta': {'epoch': 1}}
    torch.save(good, tmp_path / 'epoch_1.pth')
    (tmp_path / 'epoch_2.pth').write_bytes(b'PK\x03\x04 truncated')
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')


def test_mismatched_checkpoint_names_the_keys():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['0.weight'] = torch.zeros(8, 3, 3, 3)
    del state['1.bias']
    state['head.extra'] = torch.zeros(1)
    message = state_dict_mismatch(model.state_dict(), state)
    assert 'missing in checkpoint (1): 1.bias' in message
    assert 'unexpected in checkpoint (1): head.extra' in message
    assert 'shape mismatch (1): 0.weight: checkpoint (8, 3, 3, 3) vs model (4, 3, 3, 3)' in message
    assert state_dict_mismatch(model.state_dict(), model.state_dict()) is None


def test_test_tool_refuses_a_checkpoint_of_another_model(tiny_demo_root, tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.model.conv1.weight': torch.zeros(1)},
                'meta': {}}, other)
    proc = run_tool([PY, REPO / 'tools/test.py',
                     REPO / 'configs/demo/convnext_tiny_upernet_demo.py', other,
                     '--work-dir', tmp_path / 'w', '--cfg-options',
                     f'test_dataloader.dataset.data_root={tiny_demo_root}'],
                    check=False)
    assert proc.returncode != 0
    assert f'Checkpoint {other} does not match the model' in proc.stderr
    assert 'backbone.model.conv1.weight' in proc.stderr
