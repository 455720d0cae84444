"""Check a training run before it starts: ``tools/train.py CONFIG --dry-run``.

Why it exists: a run on a cluster waits in a queue, builds its data and model, and
may then fail hours in (weights that cannot be fetched on a node without internet,
a class-weights file of the other label set, a disk that fills at the tenth
checkpoint). This builds what the run will build, times a few real training
steps, and prints what the run will do, without writing into its work dir.
"""
import copy
import itertools
import math
import os.path as osp
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, List

import torch
from mmengine.config import Config

# an AdamW checkpoint holds the weights and two moments per parameter
CHECKPOINT_COPIES_PER_PARAMETER = 3
TIMED_STEPS = 3  # after one untimed step (allocation, autotuning)


@dataclass
class PreflightReport:
    """What was checked (``checks``: name, passed, detail) and the run's plan lines."""
    checks: List[tuple] = field(default_factory=list)
    plan: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def check(self, name: str, probe: Callable[[], str]) -> bool:
        """Run ``probe`` (returns a detail line, raises on failure) as check ``name``."""
        try:
            detail = probe()
        except Exception as error:  # every failure is reported, named, and fails the run
            self.checks.append((name, False, f'{type(error).__name__}: {error}'))
            return False
        self.checks.append((name, True, detail))
        return True

    def lines(self) -> List[str]:
        out = [f'{"ok  " if ok else "FAIL"} {name}: {detail}' for name, ok, detail in self.checks]
        if self.plan:
            out += ['', 'the run will:'] + [f'  {line}' for line in self.plan]
        out.append('')
        out.append('preflight passed' if self.passed else
                   f'preflight FAILED: {sum(not ok for _, ok, _ in self.checks)} check(s)')
        return out


def _dataset(cfg: Config, split: str):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)


def _describe_dataset(dataset) -> str:
    meta = dataset.metainfo
    return (f'{len(dataset)} images under {dataset.data_root}, label mode '
            f"{meta.get('label_mode', '?')}, {len(meta['classes'])} classes")


def _class_weights(cfg: Config) -> str:
    from artseg_mm.models.losses import load_class_weight
    heads = [cfg.model.get('decode_head')] + [cfg.model.get('auxiliary_head')]
    found = []
    for head in filter(None, heads):
        losses = head.get('loss_decode')
        for loss in losses if isinstance(losses, (list, tuple)) else [losses]:
            if loss and loss.get('class_weight') is not None:
                weights = load_class_weight(loss.class_weight, loss.get('classes'))
                found.append(f'{len(weights)} weights ({loss.class_weight})'
                             if isinstance(loss.class_weight, str) else f'{len(weights)} weights')
    return ', '.join(found) if found else 'none set (unweighted loss)'


def _weights(cfg: Config) -> str:
    from artseg_mm.cli import check_pretrained_weights
    backbone = cfg.model.backbone
    source = check_pretrained_weights(cfg)
    if source is None:
        return f'{backbone.type}: not a timm backbone, not checked'
    what = dict(none='random initialisation (pretrained=False)', file='local file',
                folder='weights folder (sha256 checked)', hub='timm hub (reachable)',
                url='download (not checked ahead)', **{'hub-cache': 'local hub cache'}
                )[source.kind]
    return f'{backbone.model_name}: {what}' + (f' {source.location}' if source.location else '')


def _fine_tune_start(cfg: Config) -> str:
    from artseg_mm.cli import check_fine_tune_weights
    check_fine_tune_weights(cfg, cfg.filename or 'the config')
    return f'load_from={cfg.load_from}'


def _device(amp: bool) -> str:
    from artseg_mm.engine.optim_wrapper import cpu_supports_bf16
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return (f'{torch.cuda.device_count()} CUDA device(s), {name}'
                + ('; --amp: fp16 with loss scaling' if amp else ''))
    if amp:
        return ('no CUDA device; --amp: ' + ('bf16 autocast (the CPU has bf16 kernels)'
                                             if cpu_supports_bf16() else
                                             'no bf16 kernels on this CPU: trains in fp32'))
    return 'no CUDA device: trains on the CPU'


def kept_checkpoints(cfg: Config) -> int:
    """How many checkpoints the schedule's checkpoint hook keeps at most."""
    hook = cfg.default_hooks.get('checkpoint') or {}
    epochs = cfg.train_cfg.get('max_epochs') or 0
    interval = hook.get('interval', 1) or 1
    periodic = epochs // interval if interval > 0 else 0
    keep = hook.get('max_keep_ckpts', -1)
    if keep is not None and keep > 0:
        periodic = min(periodic, keep)
    return periodic + (1 if hook.get('save_best') else 0)


def _free_space(work_dir: str) -> int:
    folder = osp.abspath(work_dir)
    while not osp.isdir(folder):
        folder = osp.dirname(folder)
    return shutil.disk_usage(folder).free


def _time_steps(cfg: Config, amp: bool) -> float:
    """Median seconds of a training step on the run's own data, model and optimizer
    (built in a temporary work dir)."""
    from mmseg.registry import RUNNERS
    from mmengine.runner import Runner
    from artseg_mm.engine.optim_wrapper import enable_amp
    cfg = copy.deepcopy(cfg)
    cfg.log_level = 'WARNING'  # the runner's environment banner is not the preflight's
    if amp:
        enable_amp(cfg)
    with tempfile.TemporaryDirectory(prefix='preflight_') as work_dir:
        cfg.work_dir = work_dir
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        model = runner.model
        model.train()
        wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
        loader = runner.build_dataloader(cfg.train_dataloader)
        if not len(loader):
            raise RuntimeError('the training data gives no batch')
        times = []
        batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epochs as needed
        for step, batch in zip(range(TIMED_STEPS + 1), batches):
            start = time.perf_counter()
            model.train_step(batch, optim_wrapper=wrapper)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if step:
                times.append(time.perf_counter() - start)
        del runner
    return sorted(times)[len(times) // 2]


def run_preflight(cfg: Config, amp: bool = False, time_steps: bool = True) -> PreflightReport:
    """Every check of a training run of ``cfg``, and its plan."""
    report = PreflightReport()
    datasets = {}

    def probe_dataset(split):
        def probe():
            datasets[split] = _dataset(cfg, split)
            return _describe_dataset(datasets[split])
        return probe

    report.check('training data', probe_dataset('train'))
    if cfg.get('val_dataloader'):
        report.check('validation data', probe_dataset('val'))
    report.check('class weights', lambda: _class_weights(cfg))
    if cfg.get('require_load_from'):
        report.check('fine-tune start', lambda: _fine_tune_start(cfg))
    report.check('pretrained weights', lambda: _weights(cfg))
    report.check('device', lambda: _device(amp))

    params = None

    def probe_model():
        nonlocal params
        from artseg_mm.apis import build_segmentor
        model = build_segmentor(cfg)  # without pretrained weights: a count needs none
        params = sum(p.numel() for p in model.parameters())
        return f'{params / 1e6:.1f} M parameters'
    report.check('model', probe_model)

    epochs = cfg.train_cfg.get('max_epochs')
    batch = cfg.train_dataloader.batch_size
    iters = (math.ceil(len(datasets['train']) / batch) if 'train' in datasets else None)
    kept = kept_checkpoints(cfg)
    if params is not None:
        need = kept * params * 4 * CHECKPOINT_COPIES_PER_PARAMETER

        def probe_disk():
            free = _free_space(cfg.work_dir)
            detail = (f'{free / 2**30:.1f} GiB free at {cfg.work_dir}; {kept} checkpoint(s) '
                      f'kept, about {need / 2**30:.2f} GiB (weights and AdamW moments)')
            if free < need:
                raise OSError(detail)
            return detail
        report.check('disk', probe_disk)

    step_seconds = None
    if time_steps and report.passed:
        def probe_timing():
            nonlocal step_seconds
            step_seconds = _time_steps(cfg, amp)
            return f'{step_seconds:.2f} s per iteration (median of {TIMED_STEPS} real batches)'
        report.check('training step', probe_timing)

    report.plan.append(f'train {epochs} epochs of {iters} iterations (batch {batch}, '
                       f'{len(datasets["train"]) if "train" in datasets else "?"} images)')
    report.plan.append(f'validate every {cfg.train_cfg.get("val_interval", 1)} epoch(s); '
                       f'keep {kept} checkpoint(s) in {cfg.work_dir}')
    if step_seconds is not None and iters and epochs:
        total = step_seconds * iters * epochs
        length = f'{total / 3600:.1f} h' if total >= 3600 else f'{max(total / 60, 1):.0f} min'
        report.plan.append(f'take about {length} of training steps (validation and '
                           'checkpoints not counted)')
    return report
