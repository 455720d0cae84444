"""Benchmark our segmentors against their peers on the same encoder.

For each study model (``configs/<encoder>_<decoder>_artefact.py``), builds in
one process ours (pretrained off) and its peers:

- segmentation-models-pytorch's model with our decoder on the same encoder,
  ``UPerNet('tu-<encoder>')`` with our head's channels (``Unet('resnet50')`` for
  our ResNet-50 U-Net), with our config's loss;
- the mmseg-native twin where ``configs/reference/`` has one: mmseg's UPerNet
  (512 channels) with mmseg's own SwinTransformer for Swin-Tiny.

and prints, in fp32 and (on a CPU with bf16 kernels) in bf16 autocast, with
the CPU's features in the header, parameters, GFLOPs of one forward at ``--infer-size``
(``artseg_mm.analysis.flops``: mmengine's counter, 1 FLOP per multiply-add, as
compare.py), the training-step time (forward + backward + optimizer
step: ours with the optimizer its config builds, the peers with
``torch.optim.AdamW(model.parameters())``, PyTorch's defaults), the
inference time per image at 512x512, peak memory (peak RSS of a fresh
subprocess on CPU; ``torch.cuda.max_memory_allocated`` on CUDA) and ours / peer
ratios against each peer in fp32 and in the same precision, and how far each
model's bf16 logits are from its fp32 logits (largest difference, share of
pixels whose class changes). Warm-up, then ``--repeats`` rounds interleaved
between ours and the peers, one precision at a time (drift from other load hits
all alike), medians; threads fixed; weights seeded. ``--background-load N``
times them again beside N processes that each spin a core and prints ours/peer
with and without them.

``--slide`` instead times sliding-window inference of our model on a
``--slide-size`` square input (default 4096) for window batch sizes
``--slide-batch-sizes`` (default 1 2 4), each in its own subprocess so its peak
RSS is clean, plus mmseg's stock ``slide_inference`` on the same model.

``--scan`` measures segmenting one ``--scan-size`` square scan (default 4096)
with ``--scan-model`` (a work dir or config; default our ConvNeXt-T config,
untrained): ``tools/infer.py``'s path for each ``--slide-batch-sizes`` window
batch (and bf16 where the CPU has bf16 kernels, or on CUDA) against mmseg's
``slide_inference`` and ``MMSegInferencer`` on the same model, in megapixels per
second with peak memory, and the share of pixels each option changes against
the first ``infer`` run (see ``artseg_mm.analysis.scan_speed``).

``--overlaps F ...`` times and scores the sliding windows of a ``--scan-model``
work dir at those window overlaps (and ``--windows PX ...`` sizes): the
validation split's mIoU and a scan's mask against the config's window at the
largest overlap (see ``artseg_mm.analysis.window_overlap``).

With a config and a checkpoint as its first arguments it is mmseg's
``benchmark.py`` (same flags: ``--log-interval``, ``--work-dir``,
``--repeat-times``), images per second on the test split, working on splits under
200 images (see ``artseg_mm.analysis.fps``).

Examples::

    python tools/analysis_tools/benchmark.py --encoders convnext_tiny --out bench.md
    python tools/analysis_tools/benchmark.py --device cuda --amp
    python tools/analysis_tools/benchmark.py --slide --encoders convnext_tiny
    python tools/analysis_tools/benchmark.py --scan --slide-batch-sizes 1 4
    python tools/analysis_tools/benchmark.py --background-load 1 --no-memory
    python tools/analysis_tools/benchmark.py --overlaps 0 0.25 0.5 --scan-model WORK_DIR
    python tools/analysis_tools/benchmark.py --overlaps 0.25 --windows 96 128 256 --scan-model WORK_DIR
    python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT --work-dir DIR
"""
import json
import os
import subprocess
import sys
from typing import List

import torch

from artseg_mm.analysis.fps import run_fps_benchmark
from artseg_mm.analysis.scan_speed import bench_scan, bench_slide, child_scan, child_slide
from artseg_mm.analysis.speed import ROOT, bench_models, build_parser, child_memory, header
from artseg_mm.analysis.timing import print_report
from artseg_mm.analysis.window_overlap import overlap_table


def parse_args(argv=None):
    return build_parser(description=__doc__.split('\n')[0]).parse_args(argv)


def run_child(spec: dict, argv: List[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *argv, '--_child', json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('CHILD_RESULT ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'benchmark subprocess {spec} failed (rc {proc.returncode}):\n'
                           f'{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('CHILD_RESULT '):])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].endswith('.py'):  # mmseg's benchmark.py CONFIG CHECKPOINT
        run_fps_benchmark(argv)
        return
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.clock == 'cpu' and device.type != 'cpu':
        raise SystemExit('--clock cpu is for --device cpu only')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but torch.cuda.is_available() is False')
    if args.windows and not args.overlaps:
        raise SystemExit('--windows sizes the windows of --overlaps; give --overlaps too')
    parent_argv = list(argv)
    if args._child:
        spec = json.loads(args._child)
        if spec.get('scan'):
            result = child_scan(spec, args)
        else:
            result = child_slide(spec, args) if spec.get('slide') else child_memory(spec, args)
        print('CHILD_RESULT ' + json.dumps(result), flush=True)
        return
    lines = header(args, device)
    print('\n'.join(lines), flush=True)
    if args.overlaps:
        table = overlap_table(args.scan_model, args.overlaps, args.overlap_scan_size,
                              args.slide_batch_sizes[-1], windows=args.windows)
    else:
        table = (bench_scan if args.scan else bench_slide if args.slide
                 else bench_models)(args, lambda spec: run_child(spec, parent_argv), device)
    print_report([*lines, '', *table],
                 'python tools/analysis_tools/benchmark.py ' + ' '.join(argv), args.out)


if __name__ == '__main__':
    main()
