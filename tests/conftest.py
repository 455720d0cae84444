"""Shared fixtures: a tiny demo dataset and a runner for the command-line tools."""
import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CUDA_SKIP_REASON = ('needs a CUDA device: torch.cuda.is_available() is False '
                    '(run them with tools/misc/gpu_check.sh on a GPU machine)')


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'cuda: needs a CUDA device; skipped when torch.cuda.is_available() '
        'is False (select with -m cuda)')
    config.addinivalue_line(
        'markers', 'bench: a test of the benchmarks in benchmarks/; left out of make test '
        '(run them with make bench-test or -m bench)')
    config.addinivalue_line(
        'markers', 'e2e: a long end-to-end run (a killed training or collection resumed); '
        'left out of make test, run by make e2e-test and by .ci/run')


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` when no CUDA device is present."""
    cuda_items = [item for item in items if item.get_closest_marker('cuda')]
    if not cuda_items:
        return
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=CUDA_SKIP_REASON)
    for item in cuda_items:
        item.add_marker(skip)


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory) -> Path:
    """Six 128 px demo images in the ARTeFACT layout: 4 train, 2 val."""
    from artseg_mm.data_prep.demo_generator import generate_demo_dataset
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


def dist_run_options(data_root: Path) -> list:
    """tiny_run_options for multi-process runs: one checkpoint (no best-mIoU
    copy); mmengine still validates after the last epoch, over all ranks."""
    return tiny_run_options(data_root) + ['train_cfg.val_interval=5',
                                          'default_hooks.checkpoint.save_best=None']


# --cfg-options for a demo ConvNeXt config: a ConvNeXt-atto encoder and a
# 16-channel head, for tests of a launch path (the model's size only costs time)
SMALL_MODEL_OPTIONS = ['model.backbone.model_name=convnext_atto',
                       'model.backbone.drop_path_rate=0.0',
                       'model.decode_head.channels=16']


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


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
# the study's configs (configs/<name>_artefact.py), as the Makefile finds them
STUDY_CONFIGS = sorted(path.name[:-len('_artefact.py')]
                       for path in (REPO / 'configs').glob('*_artefact.py'))


def study_config(name: str):
    """configs/<name>_artefact.py with pretrained backbone weights off (no network)."""
    from mmengine.config import Config
    cfg = Config.fromfile(REPO / 'configs' / f'{name}_artefact.py')
    cfg.model.backbone.pretrained = False
    return cfg


def build_study_model(name_or_cfg):
    """The model of a study config (a name, or a Config from study_config)."""
    from mmengine.registry import init_default_scope

    import artseg_mm  # noqa: F401
    from mmseg.registry import MODELS
    cfg = study_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    init_default_scope('mmseg')
    return MODELS.build(cfg.model)


def study_batch(size: int, n: int = 2, seed: int = 0):
    """``(inputs, data_samples)``: n random size x size images with binary
    labels, their first 4 rows ignored (255) as on scan borders."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=gen)
    samples = []
    for _ in range(n):
        label = torch.randint(0, 2, (1, size, size), generator=gen)
        label[:, :4] = 255
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    return inputs, samples

STRIDES = (4, 8, 16, 32)  # a four-stage encoder's output strides


@functools.lru_cache(maxsize=None)
def backbone_channels() -> dict:
    """Feature channels (at STRIDES) of the study configs' encoders, by timm
    model name: timm's FeatureInfo for each config's model_name and
    out_indices (features models built on the meta device: no weights)."""
    import timm
    import torch
    channels = {}
    for name in STUDY_CONFIGS:
        backbone = study_config(name).model.backbone
        with torch.device('meta'):
            features = timm.create_model(backbone.model_name, features_only=True,
                                         out_indices=tuple(backbone.out_indices))
        assert features.feature_info.reduction() == list(STRIDES), name
        channels[backbone.model_name] = features.feature_info.channels()
    return channels


def multiscale_features(in_channels, batch=2, size=64, seed=0):
    """Random encoder features at STRIDES for a ``size`` input (head tests)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, size // s, size // s, generator=gen)
        for c, s in zip(in_channels, STRIDES)
    ]


def decode_head_cfg(head_type: str, in_channels, **kwargs) -> dict:
    """A decode head config for the head tests: 4 levels, 3 classes, BN, mmseg's
    cross-entropy; ``kwargs`` add or override keys."""
    cfg = dict(
        type=head_type,
        in_channels=in_channels,
        in_index=[0, 1, 2, 3],
        dropout_ratio=0.1,
        num_classes=3,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    cfg.update(kwargs)
    return cfg


def conv_bn_params(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a bias-free k x k conv followed by BN (weight and bias)."""
    return c_in * c_out * k * k + 2 * c_out


def assert_trains_on_a_batch_of_one(head, in_channels):
    """A training step of one sample (plain BN): logits at 1/4 of a 64 px input
    and a gradient on the classifier."""
    head.train()
    logits = head(multiscale_features(in_channels, batch=1))
    assert tuple(logits.shape) == (1, 3, 16, 16)
    logits.mean().backward()
    assert head.conv_seg.weight.grad is not None


def assert_loss_is_cross_entropy(head, in_channels, ignored) -> dict:
    """``head.loss_by_feat`` on random 3-class labels of a 64 px input (pixels at
    ``ignored`` set to 255) equals PyTorch's cross-entropy of the logits
    upsampled bilinearly; returns the losses."""
    import torch
    import torch.nn.functional as F
    labels = torch.randint(0, 3, (2, 64, 64), generator=torch.Generator().manual_seed(1))
    labels[ignored] = 255
    logits = head(multiscale_features(in_channels))
    losses = head.loss_by_feat(logits, seg_samples(labels))
    expected = F.cross_entropy(
        F.interpolate(logits, size=(64, 64), mode='bilinear', align_corners=False),
        labels, ignore_index=255)
    torch.testing.assert_close(losses['loss_ce'], expected)
    return losses


def assert_head_trains_on_timm_features(encoder, head):
    """Logits at 1/4 of a 64 px input from the timm encoder's features, and
    gradients that reach every encoder parameter."""
    import torch
    logits = head(encoder(torch.randn(2, 3, 64, 64)))
    assert tuple(logits.shape) == (2, 3, 16, 16)
    logits.mean().backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


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
