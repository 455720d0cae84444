"""Shared fixtures: a tiny demo dataset and a runner for the command-line tools."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str):
    """Import a script under tools/ (not a package) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory) -> Path:
    """Six 128 px demo images in the ARTeFACT layout: 4 train, 2 val."""
    from artseg_mm.datasets.demo_generator import generate_demo_dataset
    root = tmp_path_factory.mktemp('data') / 'artefact_demo'
    generate_demo_dataset(root, num_images=6, num_val=2, seed=0, size=128,
                          progress=False)
    return root


def tiny_run_options(data_root: Path, epochs: int = 1, ckpt_interval: int = 1) -> list:
    """--cfg-options that shrink a demo config to a few CPU iterations."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=1',
        f'default_hooks.checkpoint.interval={ckpt_interval}',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1',
        # keep the demo's warm-up + cosine, scaled to the tiny run (a 1-epoch
        # run is all warm-up: the cosine phase then lies beyond its end)
        f'param_scheduler.1.T_max={max(epochs - 1, 1)}',
        f'param_scheduler.1.end={max(epochs, 2)}',
        'param_scheduler.1.begin=1', 'param_scheduler.0.end=1',
    ]


def run_tool(args, cwd=REPO, env_extra=None, check=True, timeout=900):
    """Run a repo tool with this interpreter; show its output when it fails."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    env.update(env_extra or {})
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{args} exited with {proc.returncode}\n--- stdout ---\n'
            f'{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


PY = sys.executable
STRIDES = (4, 8, 16, 32)  # a four-stage encoder's output strides
# feature channels of the study's encoders at those strides (timm)
BACKBONE_CHANNELS = {
    'convnext_tiny/swin_tiny': [96, 192, 384, 768],
    'coat_lite_small': [64, 128, 320, 512],
    'resnet50': [256, 512, 1024, 2048],
}


def multiscale_features(in_channels, batch=2, size=64, seed=0):
    """Random encoder features at STRIDES for a ``size`` input (head tests)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, size // s, size // s, generator=gen)
        for c, s in zip(in_channels, STRIDES)
    ]


def assert_gradients_reach_every_parameter(head, feats):
    """Backpropagate through a decode head: every parameter and every input
    level must receive a non-zero gradient."""
    feats = [f.requires_grad_() for f in feats]
    head(feats).square().mean().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert all(f.grad.abs().sum() > 0 for f in feats)


def seg_samples(labels):
    """SegDataSamples holding each (H, W) label map as ground truth."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None])
        samples.append(sample)
    return samples


def read_scalars(work_dir: Path) -> list:
    """Every record of the run's vis_data/scalars.json logs, in order."""
    records = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    return records
