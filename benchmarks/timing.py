"""How the benchmarks time: the precisions and their autocast, interleaved
medians, one precision group after another, busy neighbour processes, the CPU
facts the numbers depend on, and logit agreement between precisions.

Model-independent, so the peers table (:mod:`benchmarks.peers`), the slide and
scan tables (:mod:`benchmarks.slide`, :mod:`benchmarks.scan`) share one way of
measuring.
"""
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, List, Optional

import torch
import torch.nn as nn


def sync(device):
    """Wait for the device's queued work (CUDA); nothing to wait for on a CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def amp_precision(device) -> str:
    """What ``--amp`` means on ``device``: fp16 (+ GradScaler) on CUDA, bf16 on a CPU."""
    return 'fp16' if device.type == 'cuda' else 'bf16'


def step_precisions(args, device) -> List[str]:
    """The precisions every model is timed in: ``--amp``'s alone, or fp32 and,
    on a CPU with bf16 kernels, bf16 too (unless ``--fp32-only``)."""
    if args.amp:
        return [amp_precision(device)]
    from artseg_mm.engine import cpu_supports_bf16
    if device.type == 'cpu' and cpu_supports_bf16() and not args.fp32_only:
        return ['fp32', 'bf16']
    return ['fp32']


def precision_autocast(args, device, precision: Optional[str] = None):
    """The autocast context of ``precision`` (default: ``--amp``'s, else fp32 = off)."""
    from artseg_mm.models.segmentors.encoder_decoder import AUTOCAST_DTYPES
    precision = precision or (amp_precision(device) if args.amp else 'fp32')
    if precision == 'fp32':
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def time_once(step, device, clock='wall') -> float:
    """Seconds (wall or process CPU) of one call of ``step``, device work included."""
    now = time.process_time if clock == 'cpu' else time.perf_counter
    sync(device)
    t0 = now()
    step()
    sync(device)
    return now() - t0


def time_interleaved(steps: List[Callable], args, device) -> List[float]:
    """Warm up each step, then ``repeats`` rounds ours, peer, ...; medians."""
    for step in steps:
        for _ in range(args.warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(args.repeats):
        for i, step in enumerate(steps):
            times[i].append(time_once(step, device, args.clock))
    return [statistics.median(t) for t in times]


SPEED_CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile')


def cpu_features() -> str:
    """The CPU's model name and the features the timings depend on: its vector
    flags (Linux /proc/cpuinfo), PyTorch's kernel level, bf16 kernels in oneDNN."""
    from artseg_mm.engine import cpu_supports_bf16
    from artseg_mm.models.layers import nnpack_usable
    name, flags = platform.processor() or platform.machine(), set()
    if os.path.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    name = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
                    break
    found = (' '.join(f for f in SPEED_CPU_FLAGS if f in flags) or
             'none of ' + ' '.join(SPEED_CPU_FLAGS)) if flags else 'unknown'
    return (f'{name}, {os.cpu_count()} logical CPUs; flags: {found}; torch CPU capability '
            f'{torch.backends.cpu.get_cpu_capability()}; oneDNN bf16 kernels: '
            f'{"yes" if cpu_supports_bf16() else "no (bf16 rows left out)"}; NNPACK: '
            f'{"yes" if nnpack_usable() else "no"}')


def seeded(build: Callable[[int], nn.Module], size: int, seed: int = 0) -> nn.Module:
    """``build(size)`` after seeding torch: the same random weights every run."""
    torch.manual_seed(seed)
    return build(size)


def time_by_precision(steps: list, args, device) -> list:
    """``(step, median)`` pairs, the steps of one precision interleaved with each
    other (ours and its peers alike), one precision after the other. Timed all
    mixed, a step after one of the other precision ran slower: ours' fp32
    ConvNeXt-T training step measured 1.0-1.08x of smp's that way, 0.85x so."""
    pairs = []
    for precision in dict.fromkeys(s.precision for s in steps):
        group = [s for s in steps if s.precision == precision]
        pairs += zip(group, time_interleaved(group, args, device))
    return pairs


def busy_processes(n: int):
    """``n`` processes that spin a CPU core each, until the context ends: the
    machine busy with other work, as a shared CPU often is."""
    @contextlib.contextmanager
    def running():
        procs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
                 for _ in range(n)]
        try:
            time.sleep(0.5)  # let them reach the scheduler
            yield procs
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    return running()


def logit_agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """Largest absolute logit difference and the share (%) of pixels whose
    class (argmax) changes, ``other`` against ``reference``."""
    reference, other = reference.float(), other.float()
    return dict(max_diff=float((reference - other).abs().max()),
                changed=float((reference.argmax(1) != other.argmax(1)).float().mean()) * 100)
