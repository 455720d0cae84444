"""Speed of our segmentors against their peers on the same encoder: the models,
the timed steps and the models table of ``tools/analysis_tools/benchmark.py``
(how it times: :mod:`.timing`; the --scan and --slide tables: :mod:`.scan_speed`).

``args`` is that tool's parsed command line; ``child`` runs one measurement in
a fresh process (its peak memory is clean there) and returns its result.
"""
import argparse
import glob
import json
import logging
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from .flops import gflops_header, try_gflops
from .timing import (amp_precision, busy_processes, cpu_features, logit_agreement,
                     precision_autocast, seeded, step_precisions, time_by_precision)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(ROOT, 'configs')


def study_models() -> Dict[str, str]:
    """Encoder name -> the study's config of it: ``configs/<encoder>_<decoder>_artefact.py``,
    the model list the Makefile and the tests read too."""
    models: Dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, '*_artefact.py'))):
        encoder = os.path.basename(path)[:-len('_artefact.py')].rsplit('_', 1)[0]
        if encoder in models:
            raise ValueError(f'two study configs of encoder {encoder!r}: {models[encoder]} '
                             f'and {path}; the benchmark times one model per encoder')
        models[encoder] = path
    return models


def mmseg_reference(our_config: str) -> Optional[str]:
    """The mmseg-native twin of one of our models, if the repo has one:
    ``configs/reference/<model>_mmseg_artefact.py`` for ``configs/<model>_artefact.py``."""
    model = os.path.basename(our_config)[:-len('_artefact.py')]
    path = os.path.join(CONFIG_DIR, 'reference', f'{model}_mmseg_artefact.py')
    return path if os.path.isfile(path) else None


def built_for_one_size(timm_name: str) -> bool:
    """timm builds this encoder for one input size (its pretrained config's
    ``fixed_input_size``: Swin, CoaT); ours and its peers are then built for the
    size they are timed at, alike."""
    import timm
    return bool(timm.models.get_pretrained_cfg(timm_name).fixed_input_size)


def build_parser(description: str = 'benchmark ours against peers') -> argparse.ArgumentParser:
    """The flags of ``tools/analysis_tools/benchmark.py`` (tests build their settings here)."""
    encoders = list(study_models())
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--encoders', nargs='+', default=encoders, choices=encoders)
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--amp', action='store_true',
                        help='autocast only: float16 + GradScaler on CUDA, '
                        'bfloat16 on CPU; applied to every model alike')
    parser.add_argument('--fp32-only', action='store_true',
                        help='on a CPU with bf16 kernels, time fp32 only (by default '
                        'every model is timed in fp32 and in bf16 there)')
    parser.add_argument('--background-load', type=int, default=0, metavar='N',
                        help='time the models again beside N busy processes and '
                        'print ours/peer with and without them')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=4)
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--train-size', type=int, default=256)
    parser.add_argument('--infer-size', type=int, default=512)
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                        help="'cpu': process CPU seconds (less sensitive to other "
                        "load on a shared CPU machine; CPU device only)")
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the per-model peak-memory subprocesses')
    parser.add_argument('--same-optimizer', action='store_true',
                        help="time ours with the peers' optimizer (torch AdamW "
                        "defaults) instead of the one its config builds")
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides for OUR configs, e.g. '
                        'model.channels_last=True model.test_cfg.fuse_conv_bn=True')
    parser.add_argument('--slide', action='store_true')
    parser.add_argument('--slide-size', type=int, default=4096)
    parser.add_argument('--slide-batch-sizes', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--no-slide-stock', action='store_true',
                        help="skip mmseg's stock slide_inference reference run")
    parser.add_argument('--scan', action='store_true',
                        help="time one large scan: infer.py's path vs mmseg's")
    parser.add_argument('--scan-model', default='configs/convnext_tiny_upernet_artefact.py',
                        help='work dir or config for --scan')
    parser.add_argument('--scan-checkpoint', help='checkpoint for a --scan-model config')
    parser.add_argument('--scan-size', type=int, default=4096)
    parser.add_argument('--overlaps', type=float, nargs='+', metavar='FRACTION',
                        help='instead: time and score the sliding windows of the '
                        '--scan-model work dir at these overlaps (e.g. 0 0.125 0.25 '
                        '0.333 0.5): a --overlap-scan-size scan and the validation split')
    parser.add_argument('--overlap-scan-size', type=int, default=2048)
    parser.add_argument('--windows', type=int, nargs='+', default=[], metavar='PIXELS',
                        help='with --overlaps: these window sizes too (default: the '
                        "config's); encoders built for one input size take only theirs")
    parser.add_argument('--out', help='write the markdown table here too')
    parser.add_argument('--_child', help=argparse.SUPPRESS)
    return parser



# ----------------------------------------------------------------- models
@dataclass
class Candidate:
    """One model to time: how to build it for a phase, run it, and its loss."""
    name: str
    kind: str  # 'ours' | 'peer'
    num_classes: int
    build: Callable[[int], nn.Module]  # input size -> model
    infer: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] = None


def default_adamw(model: nn.Module) -> torch.optim.Optimizer:
    """What a peer's user writes: AdamW over all parameters, PyTorch's defaults."""
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)


def describe_optimizer(opt: torch.optim.Optimizer) -> str:
    flags = [k for k in ('fused', 'foreach') if opt.defaults.get(k)]
    return (f'{type(opt).__name__}({", ".join(f"{k}=True" for k in flags)}), '
            f'{len(opt.param_groups)} param groups')


def _to_value(text: str):
    try:
        return json.loads(text.replace("'", '"'))
    except json.JSONDecodeError:
        if text in ('True', 'False', 'None'):
            return {'True': True, 'False': False, 'None': None}[text]
        return text


def our_cfg(encoder: str, size: Optional[int], cfg_options: List[str]):
    """Our config of ``encoder``, pretrained weights off (timing needs none), an
    encoder built for one size built for ``size`` (None: the config's sliding
    window), then ``--cfg-options``."""
    from mmengine.config import Config
    cfg = Config.fromfile(study_models()[encoder])
    cfg.model.backbone.pretrained = False
    if built_for_one_size(cfg.model.backbone.model_name):
        cfg.model.backbone.img_size = size or cfg.model.test_cfg.crop_size[0]
    options = {}
    for item in cfg_options:
        if '=' not in item:
            raise ValueError(f'--cfg-options expects key=value, got {item!r}')
        key, value = item.split('=', 1)
        options[key] = _to_value(value)
    cfg.merge_from_dict(options)
    return cfg


def _samples(labels: torch.Tensor):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for label in labels:
        shape = tuple(label.shape)
        s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                        pad_shape=shape, img_path='<random>'))
        s.gt_sem_seg = PixelData(data=label[None])
        out.append(s)
    return out


def _metas(x: torch.Tensor) -> List[dict]:
    shape = tuple(x.shape[2:])
    return [dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                 padding_size=[0, 0, 0, 0])] * x.shape[0]


def _mm_infer(model, x):
    return model.inference(x, _metas(x))


def _mm_loss(model, x, y):
    losses = model.loss(x, _samples(y))
    return sum(v for k, v in losses.items() if 'loss' in k)


def _build_mm(cfg_model) -> nn.Module:
    import artseg_mm  # noqa: F401  (mmcv.ops stand-in before mmseg.models)
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = MODELS.build(cfg_model)
    # SyncBN needs a process group in training; one process uses plain BN.
    return revert_sync_batchnorm(model)


def candidates(encoder: str, args) -> List[Candidate]:
    """Ours, the segmentation-models-pytorch model with our decoder on the same
    timm encoder, and mmseg's native twin where configs/reference/ has one."""
    import segmentation_models_pytorch as smp

    # our config as trained (size-independent parts: optimizer, loss)
    train_cfg = our_cfg(encoder, args.train_size, args.cfg_options)
    timm_name = train_cfg.model.backbone.model_name
    fixed = built_for_one_size(timm_name)
    head = train_cfg.model.decode_head
    num_classes = head.num_classes

    def ours(size):
        cfg = our_cfg(encoder, size, args.cfg_options)
        model = _build_mm(cfg.model)
        model.test_cfg['mode'] = 'whole'  # one 512 image: one window anyway
        return model

    def our_optimizer(model):
        """The torch optimizer our config's ``optim_wrapper`` builds (type,
        options, paramwise groups); autocast and loss scaling stay the
        benchmark's, alike for every model."""
        import artseg_mm  # noqa: F401  (registers the wrapper and constructor)
        from mmengine.logging import MMLogger
        from mmengine.optim import build_optim_wrapper
        from mmengine.registry import DefaultScope
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # not a line per parameter group
        try:
            with DefaultScope.overwrite_default_scope('mmseg'):
                return build_optim_wrapper(model, train_cfg.optim_wrapper).optimizer
        finally:
            logger.setLevel(level)

    # the same loss module for the smp peers as our config uses
    loss_cfg = train_cfg.model.decode_head.loss_decode
    loss_holder = {}

    def peer_loss(model, x, y):
        if 'fn' not in loss_holder:
            import artseg_mm  # noqa: F401
            from mmseg.registry import MODELS
            loss_holder['fn'] = MODELS.build(loss_cfg).to(x.device)
        return loss_holder['fn'](model(x), y, ignore_index=255)

    def peer_infer(model, x):
        return model(x)

    path = study_models()[encoder]
    out = [Candidate(f'ours ({os.path.basename(path)})', 'ours', num_classes,
                     ours, _mm_infer, _mm_loss,
                     default_adamw if args.same_optimizer else our_optimizer)]
    if head.type == 'UNetHead':  # smp's own encoder of the same name (ResNet-50)
        out.append(Candidate(f'smp Unet {timm_name}', 'peer', num_classes,
                             lambda size: smp.Unet(timm_name, encoder_weights=None,
                                                   classes=num_classes),
                             peer_infer, peer_loss))
    elif head.type == 'UPerFeatureHead':
        def smp_upernet(size):
            kw = dict(img_size=size) if fixed else {}
            return smp.UPerNet(f'tu-{timm_name}', encoder_weights=None,
                               decoder_channels=head.channels, classes=num_classes, **kw)
        out.append(Candidate(f'smp UPerNet tu-{timm_name}', 'peer', num_classes,
                             smp_upernet, peer_infer, peer_loss))
    else:
        raise ValueError(f'{path}: no segmentation-models-pytorch peer for decode head '
                         f'{head.type!r} (UPerFeatureHead and UNetHead have one)')
    reference = mmseg_reference(path)
    if reference is not None:
        def mmseg_native(size):
            from mmengine.config import Config
            cfg = Config.fromfile(reference)
            cfg.model.backbone.init_cfg = None  # no network; timing needs no weights
            cfg.model.pop('data_preprocessor')  # inputs are already normalised
            model = _build_mm(cfg.model)
            model.test_cfg['mode'] = 'whole'  # as ours
            return model
        out.append(Candidate(f'mmseg native ({os.path.relpath(reference, ROOT)})', 'peer',
                             num_classes, mmseg_native, _mm_infer, _mm_loss))
    return out


class TrainStep:
    """forward + loss + backward + optimizer step (GradScaler with fp16 AMP)."""

    def __init__(self, cand: Candidate, model, args, device, precision: Optional[str] = None):
        self.cand, self.model, self.args, self.device = cand, model, args, device
        self.precision = precision or (amp_precision(device) if args.amp else 'fp32')
        self.model.train()
        self.opt = (cand.optimizer or default_adamw)(model)
        self.scaler = torch.amp.GradScaler('cuda') if self.precision == 'fp16' else None
        g = torch.Generator().manual_seed(0)
        s = args.train_size
        self.x = torch.randn(args.train_batch, 3, s, s, generator=g).to(device)
        self.y = torch.randint(0, cand.num_classes, (args.train_batch, s, s),
                               generator=g).to(device)

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        with precision_autocast(self.args, self.device, self.precision):
            loss = self.cand.loss(self.model, self.x, self.y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return loss


class InferStep:
    """Logits for one image at --infer-size, no autograd."""

    def __init__(self, cand: Candidate, model, args, device, precision: Optional[str] = None):
        self.cand, self.model, self.args, self.device = cand, model, args, device
        self.precision = precision or (amp_precision(device) if args.amp else 'fp32')
        self.model.eval()
        s = args.infer_size
        self.x = torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(0)
                             ).to(device)

    def __call__(self):
        with torch.inference_mode(), precision_autocast(self.args, self.device, self.precision):
            out = self.cand.infer(self.model, self.x)
        assert out.shape[-2:] == self.x.shape[-2:], (
            f'{self.cand.name}: output {tuple(out.shape)} is not at input size')
        return out


# ------------------------------------------------------ memory subprocess
def child_memory(spec: dict, args) -> dict:
    """In a fresh process: build one candidate, run one step of a phase,
    return peak memory (MiB) after the build and after the step."""
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    device = torch.device(args.device)
    cand = candidates(spec['encoder'], args)[spec['index']]
    size = args.train_size if spec['phase'] == 'train' else args.infer_size
    model = cand.build(size).to(device)
    step = (TrainStep if spec['phase'] == 'train' else InferStep)(
        cand, model, args, device, spec.get('precision'))
    if device.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return dict(base=base, peak=torch.cuda.max_memory_allocated() / 2**20)
    base = reset_peak_rss()
    step()
    return dict(base=base, peak=peak_rss_mib())


# ------------------------------------------------------------------ main
def _fmt(v: Optional[float], spec='.2f') -> str:
    return '-' if v is None else format(v, spec)


def _ratio(ours: Optional[float], peer: Optional[float]) -> str:
    return '-' if ours is None or peer is None else f'{ours / peer:.2f}x'


def header(args, device) -> List[str]:
    """What the numbers below depend on: torch, device, CPU, threads; for the
    models table also the precisions, repeats, step shapes and optimizers (the
    --scan, --slide and --overlaps tables say their own settings)."""
    lines = [f'torch {torch.__version__}, device {device}'
             + (f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''),
             'CPU: ' + cpu_features(),
             f'threads: torch.get_num_threads()={torch.get_num_threads()} '
             f'(--threads {args.threads})']
    if args.cfg_options:
        lines.append(f'our config overrides: {" ".join(args.cfg_options)}')
    if args.scan or args.slide or args.overlaps:
        return lines
    return lines + [
        f'precisions {" ".join(step_precisions(args, device))} (autocast), warm-up '
        f'{args.warmup}, repeats {args.repeats} interleaved, medians of {args.clock} '
        f'{"seconds" if args.clock == "wall" else "CPU seconds (all threads)"}',
        f'train step = forward+loss+backward+optimizer step on {args.train_batch}x3x'
        f'{args.train_size}x{args.train_size}; inference = logits for 1x3x'
        f'{args.infer_size}x{args.infer_size}; GFLOPs of one forward at that size',
        'optimizers: ' + ("AdamW, PyTorch's defaults, for every model (--same-optimizer)"
                          if args.same_optimizer else
                          "ours = the one its config builds; peers = AdamW, "
                          "PyTorch's defaults")]


def _our_levers(model) -> dict:
    from artseg_mm.models.layers import WinogradConv2d, nnpack_usable
    levers = {k: v for k, v in dict(model.test_cfg).items()
              if k in ('fuse_conv_bn', 'autocast_dtype')}
    levers['channels_last'] = getattr(model, 'channels_last', False)
    n_wino = sum(isinstance(m, WinogradConv2d) and m.kernel_size == (3, 3)
                 for m in model.modules())
    levers['winograd_3x3_convs'] = (
        f'{n_wino} (NNPACK {"on" if nnpack_usable() else "unavailable"})')
    return levers


def _ratio_rows(encoder, cands, result, precisions, phases=('train', 'infer')) -> List[str]:
    """ours / peer for every precision of ours against the peer in fp32 (as its
    users run it) and in the same precision."""
    ours = cands[0].name
    rows = []
    for peer in cands[1:]:
        for p in precisions:
            for q in dict.fromkeys([precisions[0], p]):
                a, b = result.get((ours, p), {}), result.get((peer.name, q), {})
                cells = [_ratio(a.get(ph), b.get(ph)) for ph in phases]
                rows.append(f'| {encoder} | ours {p} / {peer.name} {q} | ' + ' | '.join(cells)
                            + ' |')
    return rows


def bench_models(args, child: Callable[[dict], dict], device) -> List[str]:
    precisions = step_precisions(args, device)
    rows, ratio_rows, load_rows, notes = [], [], [], []
    for encoder in args.encoders:
        cands = candidates(encoder, args)
        result: Dict[tuple, dict] = {(c.name, p): {} for c in cands for p in precisions}
        errors: Dict[str, str] = {}
        built = []
        for c in cands:
            try:
                built.append((c, seeded(c.build, args.infer_size).to(device)))
            except Exception as exc:  # a peer that cannot build this encoder
                if c.kind == 'ours':
                    raise
                errors[c.name] = f'{type(exc).__name__}: {exc}'[:160]
                print(f'[{encoder}] {c.name}: not built: {errors[c.name]}')
        facts = {}
        for c, model in built:
            gf, reason = try_gflops(model.eval(), device, (args.infer_size, args.infer_size))
            facts[c.name] = dict(params=sum(p.numel() for p in model.parameters()) / 1e6,
                                 gflops=gf)
            if reason:
                notes.append(f'- {encoder}, {c.name}: FLOPs n/a: {reason}')
            if c.kind == 'ours':
                facts[c.name]['levers'] = _our_levers(model)
        infer_steps = [InferStep(c, m, args, device, p) for c, m in built for p in precisions]
        train_steps = [TrainStep(c, seeded(c.build, args.train_size).to(device), args,
                                 device, p)
                       for c in cands if c.name not in errors for p in precisions]
        for step, t in time_by_precision(infer_steps, args, device):
            result[(step.cand.name, step.precision)]['infer'] = t
        for step in infer_steps:  # each precision's logits against the first's
            if step.precision != precisions[0]:
                reference = next(s for s in infer_steps if s.cand is step.cand)
                result[(step.cand.name, step.precision)].update(
                    logit_agreement(reference(), step()))
        for step, t in time_by_precision(train_steps, args, device):
            result[(step.cand.name, step.precision)]['train'] = t
            result[(step.cand.name, step.precision)]['optimizer'] = describe_optimizer(step.opt)
        if args.background_load:
            with busy_processes(args.background_load):
                loaded = {(s.cand.name, s.precision, ph): t
                          for ph, steps in (('infer', infer_steps), ('train', train_steps))
                          for s, t in time_by_precision(steps, args, device)}
            for p in precisions:
                for peer in cands[1:]:
                    for ph in ('train', 'infer'):
                        ours_k, peer_k = (cands[0].name, p), (peer.name, p)
                        if peer.name in errors:
                            continue
                        before = result[ours_k][ph] / result[peer_k][ph]
                        after = loaded[(*ours_k, ph)] / loaded[(*peer_k, ph)]
                        load_rows.append(
                            f'| {encoder} | {peer.name} | {p} | {ph} | {before:.2f}x | '
                            f'{after:.2f}x | {(after / before - 1) * 100:+.1f}% | '
                            f'{loaded[(*ours_k, ph)]:.3f} |')
        del infer_steps, train_steps, built
        if not args.no_memory:
            for i, c in enumerate(cands):
                if c.name in errors:
                    continue
                for phase in ('infer', 'train'):
                    mem = child(dict(encoder=encoder, index=i, phase=phase,
                                     precision=precisions[0]))
                    result[(c.name, precisions[0])][f'mem_{phase}'] = (
                        f'{mem["peak"]:.0f} ({mem["peak"] - mem["base"]:.0f})')
        for c in cands:
            if c.name in errors:
                rows.append(f'| {encoder} | {c.name} | | not buildable: {errors[c.name]} '
                            '| | | | | | |')
                continue
            for p in precisions:
                r, f = result[(c.name, p)], facts[c.name]
                agree = ('(reference)' if p == precisions[0] else
                         f'{r["max_diff"]:.3g} / {r["changed"]:.3f}%')
                rows.append(
                    f'| {encoder} | {c.name} | {p} | {f["params"]:.1f} | '
                    f'{_fmt(f["gflops"], ".1f")} | {r["train"]:.3f} | {r["infer"]:.3f} | '
                    f'{agree} | {r.get("mem_train", "-")} | {r.get("mem_infer", "-")} |')
        ratio_rows += _ratio_rows(encoder, [c for c in cands if c.name not in errors],
                                  result, precisions)
        notes.append(f'- {encoder}: ours {facts[cands[0].name]["levers"]}; optimizers: '
                     + '; '.join(f'{c.name}: {result[(c.name, precisions[0])]["optimizer"]}'
                                 for c in cands if c.name not in errors))
        print(notes[-1])
        print('\n'.join(rows[-len(cands) * len(precisions):] + ratio_rows[-len(cands):]),
              flush=True)
    mem_unit = ('CUDA max allocated MiB (above model)' if device.type == 'cuda'
                else 'peak RSS MiB (above built model)')
    flops = gflops_header((args.infer_size, args.infer_size))
    lines = [f'| encoder | model | precision | params (M) | {flops} | train step (s) | '
             f'inference (s) | logits vs its {precisions[0]}: max abs diff / pixels '
             f'changed | train {mem_unit} | inference {mem_unit} |',
             '|---|---|---|---|---|---|---|---|---|---|', *rows, '',
             '| encoder | ours / peer | train step | inference |', '|---|---|---|---|',
             *ratio_rows]
    if load_rows:
        lines += ['', f'with {args.background_load} busy process(es) beside the benchmark '
                  '(each spins one core):', '',
                  '| encoder | peer | precision | phase | ours/peer alone | ours/peer loaded '
                  '| change | ours loaded (s) |', '|---|---|---|---|---|---|---|---|',
                  *load_rows]
    return lines + ['', *notes]
