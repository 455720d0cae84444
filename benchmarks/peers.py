"""Our segmentors against their peers on the same encoder: training step,
inference, memory and bf16, like for like.

For each study model (``configs/<encoder>_<decoder>_artefact.py``) it builds, in
one process, ours (pretrained off) and its peers (:mod:`benchmarks.candidates`):
segmentation-models-pytorch's model with our decoder on the same encoder
(``UPerNet('tu-<encoder>')`` with our head's channels, ``Unet('resnet50')`` for
our ResNet-50 U-Net, with our config's loss) and mmseg's native twin where
``configs/reference/`` has one (mmseg's UPerNet with its own Swin). It reports
parameters, GFLOPs of one forward at ``--infer-size`` (compare.py's convention,
``artseg_mm.study.flops``), the training-step time (ours with the optimizer
its config builds, the peers with PyTorch's default AdamW), the inference time,
peak memory (per model and phase: peak RSS of a fresh subprocess on CPU,
``torch.cuda.max_memory_allocated`` after a reset on CUDA), ours / peer ratios, and how far
each model's bf16 logits are from its fp32 ones. Timed in fp32 and, on a CPU
with bf16 kernels, under bf16 autocast, one precision at a time; warm-up, then
``--repeats`` rounds interleaved between the models, medians; threads fixed;
weights seeded. ``--background-load N`` times them again beside N processes that
each spin a core.

    python -m benchmarks.peers --encoders convnext_tiny --out bench.md
    python -m benchmarks.peers --device cuda --amp
    python -m benchmarks.peers --background-load 1 --no-memory
"""
import argparse
import functools
import gc
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from artseg_mm.study.flops import gflops_header, try_gflops

from . import cli
from .candidates import candidates, describe_optimizer
from .child import run_in_child
from .steps import InferStep, TrainStep
from .table import Column, markdown_table, print_report, times
from .timing import (busy_processes, logit_agreement, seeded, step_precisions,
                     time_by_precision)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.peers',
        description='benchmark ours against peers: training step, inference, memory, bf16')
    cli.add_encoders(parser)
    cli.add_device(parser)
    cli.add_amp(parser)
    parser.add_argument('--fp32-only', action='store_true',
                        help='on a CPU with bf16 kernels, time fp32 only (by default '
                        'every model is timed in fp32 and in bf16 there)')
    parser.add_argument('--background-load', type=int, default=0, metavar='N',
                        help='time the models again beside N busy processes and '
                        'print ours/peer with and without them')
    cli.add_threads(parser)
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
    cli.add_cfg_options(parser)
    cli.add_out(parser)
    return parser


def header(settings, device) -> List[str]:
    """What the numbers depend on (:func:`benchmarks.cli.header_lines`), then the
    precisions, repeats, step shapes and optimizers."""
    return cli.header_lines(settings, device) + [
        f'precisions {" ".join(step_precisions(settings, device))} (autocast), warm-up '
        f'{settings.warmup}, repeats {settings.repeats} interleaved, medians of '
        f'{settings.clock} '
        f'{"seconds" if settings.clock == "wall" else "CPU seconds (all threads)"}',
        f'train step = forward+loss+backward+optimizer step on {settings.train_batch}x3x'
        f'{settings.train_size}x{settings.train_size}; inference = logits for 1x3x'
        f'{settings.infer_size}x{settings.infer_size}; GFLOPs of one forward at that size',
        'optimizers: ' + ("AdamW, PyTorch's defaults, for every model (--same-optimizer)"
                          if settings.same_optimizer else
                          "ours = the one its config builds; peers = AdamW, "
                          "PyTorch's defaults")]


# ----------------------------------------------------------------- rows
@dataclass
class Memory:
    """Peak memory (MiB) of one step, and before the step (after the build)."""
    peak: float
    base: float


@dataclass
class ModelRow:
    """One model in one precision; ``error`` instead of numbers if it did not build."""
    encoder: str
    model: str
    precision: Optional[str] = None
    params_m: Optional[float] = None
    gflops: Optional[float] = None
    train_s: Optional[float] = None
    infer_s: Optional[float] = None
    is_reference: bool = False  # the first precision: the others' logits compare to it
    max_diff: Optional[float] = None
    changed_percent: Optional[float] = None
    train_memory: Optional[Memory] = None
    infer_memory: Optional[Memory] = None
    error: Optional[str] = None


@dataclass
class RatioRow:
    """Ours in one precision over a peer in another: time ratios per phase."""
    encoder: str
    ours_precision: str
    peer: str
    peer_precision: str
    train: Optional[float]
    infer: Optional[float]


@dataclass
class LoadRow:
    """ours / peer alone and beside ``--background-load`` busy processes."""
    encoder: str
    peer: str
    precision: str
    phase: str
    alone: float
    loaded: float
    ours_loaded_s: float

    @property
    def change_percent(self) -> float:
        return (self.loaded / self.alone - 1) * 100


@dataclass
class PeersResult:
    models: List[ModelRow] = field(default_factory=list)
    ratios: List[RatioRow] = field(default_factory=list)
    loaded: List[LoadRow] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _memory_cell(memory: Optional[Memory]) -> Optional[str]:
    return None if memory is None else f'{memory.peak:.0f} ({memory.peak - memory.base:.0f})'


def _agreement_cell(row: ModelRow) -> Optional[str]:
    if row.error:
        return None
    if row.is_reference:
        return '(reference)'
    return f'{row.max_diff:.3g} / {row.changed_percent:.3f}%'


def model_columns(settings, device) -> List[Column]:
    reference = step_precisions(settings, device)[0]
    memory = ('CUDA max allocated MiB (above model)' if device.type == 'cuda'
              else 'peak RSS MiB (above built model)')
    return [
        Column('encoder', 'encoder'), Column('model', 'model'),
        Column('precision', lambda r: '' if r.error else r.precision),
        Column('params (M)', lambda r: f'not buildable: {r.error}' if r.error else r.params_m,
               '.1f'),
        Column(gflops_header((settings.infer_size, settings.infer_size)), 'gflops', '.1f'),
        Column('train step (s)', 'train_s', '.3f'), Column('inference (s)', 'infer_s', '.3f'),
        Column(f'logits vs its {reference}: max abs diff / pixels changed', _agreement_cell),
        Column(f'train {memory}', lambda r: _memory_cell(r.train_memory)),
        Column(f'inference {memory}', lambda r: _memory_cell(r.infer_memory))]


RATIO_COLUMNS = [
    Column('encoder', 'encoder'),
    Column('ours / peer', lambda r: f'ours {r.ours_precision} / {r.peer} {r.peer_precision}'),
    Column('train step', 'train', times()), Column('inference', 'infer', times())]

LOAD_COLUMNS = [
    Column('encoder', 'encoder'), Column('peer', 'peer'), Column('precision', 'precision'),
    Column('phase', 'phase'), Column('ours/peer alone', 'alone', times()),
    Column('ours/peer loaded', 'loaded', times()),
    Column('change', 'change_percent', lambda v: f'{v:+.1f}%'),
    Column('ours loaded (s)', 'ours_loaded_s', '.3f')]


# ------------------------------------------------------------ measuring
def measure_in_child(spec: dict, settings) -> dict:
    """In a fresh process (:mod:`benchmarks.child`): build one candidate, run one
    step of a phase, return peak memory (MiB) after the build and after the step."""
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    device = torch.device(settings.device)
    cand = candidates(spec['encoder'], settings)[spec['index']]
    size = settings.train_size if spec['phase'] == 'train' else settings.infer_size
    model = cand.build(size).to(device)
    step = (TrainStep if spec['phase'] == 'train' else InferStep)(
        cand, model, settings, device, spec.get('precision'))
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


def measure_here(spec: dict, settings) -> dict:
    """:func:`measure_in_child` in this process, its model and step freed after."""
    result = measure_in_child(spec, settings)
    gc.collect()
    torch.cuda.empty_cache()
    return result


def memory_probe(settings, device) -> Callable[[dict], dict]:
    """How a candidate's peak memory is taken. On a CPU a fresh process per model
    and phase, since a process's peak RSS cannot be reset; on CUDA this process,
    since the allocator's peak can (``reset_peak_memory_stats``) and a fresh
    process per measurement (imports, CUDA context) costs minutes over the study's
    models."""
    if device.type == 'cuda':
        return functools.partial(measure_here, settings=settings)
    return functools.partial(run_in_child, 'peers', settings=settings)


def our_levers(model) -> dict:
    """The speed options our model runs with: conv+BN folding, autocast dtype,
    channels-last, and how many 3x3 convs take NNPACK's Winograd path."""
    from artseg_mm.models.layers import WinogradConv2d, nnpack_usable
    levers = {k: v for k, v in dict(model.test_cfg).items()
              if k in ('fuse_conv_bn', 'autocast_dtype')}
    levers['channels_last'] = getattr(model, 'channels_last', False)
    n_wino = sum(isinstance(m, WinogradConv2d) and m.kernel_size == (3, 3)
                 for m in model.modules())
    levers['winograd_3x3_convs'] = (
        f'{n_wino} (NNPACK {"on" if nnpack_usable() else "unavailable"})')
    return levers


def _ratio(ours: Optional[float], peer: Optional[float]) -> Optional[float]:
    return None if ours is None or peer is None else ours / peer


def ratio_rows(encoder, cands, result, precisions, phases=('train', 'infer')) -> List[RatioRow]:
    """ours / peer for every precision of ours against the peer in fp32 (as its
    users run it) and in the same precision."""
    ours = cands[0].name
    rows = []
    for peer in cands[1:]:
        for p in precisions:
            for q in dict.fromkeys([precisions[0], p]):
                a, b = result.get((ours, p), {}), result.get((peer.name, q), {})
                ratios = {ph: _ratio(a.get(ph), b.get(ph)) for ph in phases}
                rows.append(RatioRow(encoder, p, peer.name, q, ratios.get('train'),
                                     ratios.get('infer')))
    return rows


def measure_peers(settings, device,
                  child: Optional[Callable[[dict], dict]] = None) -> PeersResult:
    """Every encoder of ``--encoders``: its candidates timed and measured.
    ``child(spec)`` measures peak memory (default: :func:`memory_probe`'s)."""
    child = child or memory_probe(settings, device)
    precisions = step_precisions(settings, device)
    columns = model_columns(settings, device)
    out = PeersResult()
    for encoder in settings.encoders:
        cands = candidates(encoder, settings)
        result: Dict[tuple, dict] = {(c.name, p): {} for c in cands for p in precisions}
        errors: Dict[str, str] = {}
        built = []
        for c in cands:
            try:
                built.append((c, seeded(c.build, settings.infer_size).to(device)))
            except Exception as exc:  # a peer that cannot build this encoder
                if c.kind == 'ours':
                    raise
                errors[c.name] = f'{type(exc).__name__}: {exc}'[:160]
                print(f'[{encoder}] {c.name}: not built: {errors[c.name]}')
        facts = {}
        for c, model in built:
            gf, reason = try_gflops(model.eval(), device,
                                    (settings.infer_size, settings.infer_size))
            facts[c.name] = dict(params=sum(p.numel() for p in model.parameters()) / 1e6,
                                 gflops=gf)
            if reason:
                out.notes.append(f'- {encoder}, {c.name}: FLOPs n/a: {reason}')
            if c.kind == 'ours':
                facts[c.name]['levers'] = our_levers(model)
        infer_steps = [InferStep(c, m, settings, device, p) for c, m in built for p in precisions]
        train_steps = [TrainStep(c, seeded(c.build, settings.train_size).to(device), settings,
                                 device, p)
                       for c in cands if c.name not in errors for p in precisions]
        for step, t in time_by_precision(infer_steps, settings, device):
            result[(step.cand.name, step.precision)]['infer'] = t
        for step in infer_steps:  # each precision's logits against the first's
            if step.precision != precisions[0]:
                reference = next(s for s in infer_steps if s.cand is step.cand)
                result[(step.cand.name, step.precision)].update(
                    logit_agreement(reference(), step()))
        for step, t in time_by_precision(train_steps, settings, device):
            result[(step.cand.name, step.precision)]['train'] = t
            result[(step.cand.name, step.precision)]['optimizer'] = describe_optimizer(step.opt)
        if settings.background_load:
            with busy_processes(settings.background_load):
                loaded = {(s.cand.name, s.precision, ph): t
                          for ph, steps in (('infer', infer_steps), ('train', train_steps))
                          for s, t in time_by_precision(steps, settings, device)}
            for p in precisions:
                for peer in cands[1:]:
                    for ph in ('train', 'infer'):
                        ours_k, peer_k = (cands[0].name, p), (peer.name, p)
                        if peer.name in errors:
                            continue
                        out.loaded.append(LoadRow(
                            encoder, peer.name, p, ph,
                            alone=result[ours_k][ph] / result[peer_k][ph],
                            loaded=loaded[(*ours_k, ph)] / loaded[(*peer_k, ph)],
                            ours_loaded_s=loaded[(*ours_k, ph)]))
        # free every model and optimizer state timed above before memory is measured
        # (on CUDA it is measured in this process)
        infer_steps = train_steps = built = model = step = reference = None
        gc.collect()
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        if not settings.no_memory:
            for i, c in enumerate(cands):
                if c.name in errors:
                    continue
                for phase in ('infer', 'train'):
                    mem = child(dict(encoder=encoder, index=i, phase=phase,
                                     precision=precisions[0]))
                    result[(c.name, precisions[0])][f'mem_{phase}'] = Memory(
                        mem['peak'], mem['base'])
        rows = []
        for c in cands:
            if c.name in errors:
                rows.append(ModelRow(encoder, c.name, error=errors[c.name]))
                continue
            for p in precisions:
                r, f = result[(c.name, p)], facts[c.name]
                rows.append(ModelRow(
                    encoder, c.name, p, f['params'], f['gflops'], r['train'], r['infer'],
                    is_reference=p == precisions[0], max_diff=r.get('max_diff'),
                    changed_percent=r.get('changed'), train_memory=r.get('mem_train'),
                    infer_memory=r.get('mem_infer')))
        ratios = ratio_rows(encoder, [c for c in cands if c.name not in errors], result,
                            precisions)
        out.models += rows
        out.ratios += ratios
        out.notes.append(f'- {encoder}: ours {facts[cands[0].name]["levers"]}; optimizers: '
                         + '; '.join(f'{c.name}: {result[(c.name, precisions[0])]["optimizer"]}'
                                     for c in cands if c.name not in errors))
        print(out.notes[-1])
        print('\n'.join(markdown_table(rows, columns)[2:]
                        + markdown_table(ratios, RATIO_COLUMNS)[2:]), flush=True)
    return out


def report_lines(result: PeersResult, settings, device) -> List[str]:
    """The models table, the ratios, the loaded ratios (if measured) and the notes."""
    lines = [*markdown_table(result.models, model_columns(settings, device)), '',
             *markdown_table(result.ratios, RATIO_COLUMNS)]
    if result.loaded:
        lines += ['', f'with {settings.background_load} busy process(es) beside the '
                  'benchmark (each spins one core):', '',
                  *markdown_table(result.loaded, LOAD_COLUMNS)]
    return lines + ['', *result.notes]


def main(argv: Optional[List[str]] = None) -> PeersResult:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    device = cli.start(settings)
    if settings.clock == 'cpu' and device.type != 'cpu':
        raise SystemExit('--clock cpu is for --device cpu only')
    lines = header(settings, device)
    print('\n'.join(lines), flush=True)
    result = measure_peers(settings, device)
    print_report([*lines, '', *report_lines(result, settings, device)],
                 cli.command('peers', argv), settings.out)
    return result


if __name__ == '__main__':
    main()
