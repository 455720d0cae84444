"""int8 against float32 on a CPU, like for like: one inference window and one scan.

Window rows (one ``--window``-px window of the study ConvNeXt-T UPerNet, untrained
seeded weights, batch 1; warm-up, then interleaved repeats, medians): ours in
PyTorch fp32 (``optimize_for_inference``), ours under bf16 autocast (only where the
CPU has bf16 kernels), the exported file in onnxruntime fp32, that file quantized
to int8 (``artseg_mm.deployment.quantize``, calibrated on windows of synthetic
demo artworks), and segmentation-models-pytorch's UPerNet on the same encoder in
fp32. Scan rows: ``ScanInferencer`` with the fp32 and the int8 file on one
``--scan-size`` synthetic scan, each in a fresh process (its peak RSS), with the
share of pixels whose class differs from fp32's. The header names the CPU's int8
kernels (VNNI or not), on which the int8 speed depends.

    python -m benchmarks.int8
    python -m benchmarks.int8 --scan-size 2048 --repeats 5
"""
import argparse
import functools
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional

import cv2
import numpy as np
import torch

from . import cli
from .child import run_in_child
from .scan import synthetic_scan
from .table import Column, markdown_table, percent, print_report, times
from .timing import time_interleaved

CONFIG = 'configs/convnext_tiny_upernet_artefact.py'
CALIBRATION_IMAGES = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.int8', description=__doc__
                                     .splitlines()[0])
    cli.add_threads(parser)
    parser.add_argument('--window', type=int, default=512)
    parser.add_argument('--scan-size', type=int, default=4096)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall')
    cli.add_out(parser)
    return parser


@dataclass
class Row:
    what: str
    seconds: float
    ratio: Optional[float] = None  # against ours fp32
    peak_mib: Optional[float] = None
    changed: Optional[float] = None  # percent of pixels against fp32


WINDOW_COLUMNS = [Column('one window', 'what'), Column('seconds', 'seconds', '.3f'),
                  Column('/ ours fp32', 'ratio', times())]
SCAN_COLUMNS = [Column('scan', 'what'), Column('seconds', 'seconds', '.1f'),
                Column('peak RSS MiB (above the model)', 'peak_mib', '.0f'),
                Column('pixels changed vs fp32', 'changed', percent())]


def write_files(tmp: str, window: int) -> tuple:
    """The study ConvNeXt-T (seeded, untrained) exported to ONNX fp32 and int8 in ``tmp``."""
    from artseg_mm.apis import init_model
    from artseg_mm.deployment import export_model
    from artseg_mm.deployment.quantize import quantize_onnx
    torch.manual_seed(0)
    options = {'model.test_cfg.crop_size': (window, window),
               'model.test_cfg.stride': (window * 2 // 3, window * 2 // 3),
               'model.backbone.pretrained': False}
    model = init_model(CONFIG, None, cfg_options=options)
    fp32, int8 = os.path.join(tmp, 'model.onnx'), os.path.join(tmp, 'model_int8.onnx')
    export_model(model, 'onnx', fp32)
    images = []
    for i in range(CALIBRATION_IMAGES):
        path = os.path.join(tmp, f'calibration_{i}.png')
        cv2.imwrite(path, synthetic_scan(window, seed=100 + i))
        images.append(path)
    quantize_onnx(fp32, int8, images, f'{CALIBRATION_IMAGES} synthetic demo artworks')
    return model, fp32, int8


def window_rows(settings, model, fp32: str, int8: str) -> List[Row]:
    from artseg_mm.deployment import ExportedSegmentor
    from artseg_mm.engine import cpu_supports_bf16
    from .candidates import candidates
    from .study_configs import image_metas
    x = torch.randn(1, 3, settings.window, settings.window)
    steps = {}
    with torch.inference_mode():
        metas = image_metas(x)
        steps['ours, PyTorch fp32'] = functools.partial(model.encode_decode, x, metas)
        if cpu_supports_bf16():
            def bf16():
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    model.encode_decode(x, metas)
            steps['ours, PyTorch bf16 autocast'] = bf16
        for name, path in (('onnxruntime fp32', fp32), ('onnxruntime int8', int8)):
            steps[name] = functools.partial(ExportedSegmentor(path).forward, x)
        peer_args = argparse.Namespace(cfg_options=[], train_size=64, device='cpu',
                                       same_optimizer=False)
        peer = candidates('convnext_tiny', peer_args)[1]
        torch.manual_seed(0)
        smp_model = peer.build(settings.window).eval()
        steps[f'{peer.name} fp32'] = functools.partial(peer.infer, smp_model, x)
        seconds = time_interleaved(list(steps.values()), settings, torch.device('cpu'))
    return [Row(name, s, s / seconds[0]) for name, s in zip(steps, seconds)]


def measure_in_child(spec: dict, settings) -> dict:
    """In a fresh process: one scan with ``ScanInferencer(spec['model'])``."""
    from artseg_mm.apis import ScanInferencer
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    inferencer = ScanInferencer(spec['model'])
    image = synthetic_scan(spec['size'])
    inferencer(image[:settings.window, :settings.window])  # warm-up: one window
    base = reset_peak_rss()
    start = time.perf_counter()
    mask = inferencer(image)
    seconds = time.perf_counter() - start
    np.save(spec['mask_path'], mask)
    return dict(seconds=seconds, peak_mib=peak_rss_mib() - base)


def scan_rows(settings, fp32: str, int8: str, tmp: str) -> List[Row]:
    rows, reference = [], None
    for name, path in (('onnxruntime fp32', fp32), ('onnxruntime int8', int8)):
        mask_path = os.path.join(tmp, f'{name.split()[-1]}.npy')
        r = run_in_child('int8', dict(model=path, size=settings.scan_size,
                                      mask_path=mask_path), settings)
        mask = np.load(mask_path)
        reference = mask if reference is None else reference
        rows.append(Row(f'{settings.scan_size}x{settings.scan_size}, {name}', r['seconds'],
                        peak_mib=r['peak_mib'], changed=float((mask != reference).mean()) * 100))
    return rows


def main(argv: Optional[List[str]] = None) -> None:
    from artseg_mm.deployment.quantize import int8_kernels
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    settings.device = 'cpu'
    device = cli.start(settings)
    lines = cli.header_lines(settings, device) + [f'int8 kernels: {int8_kernels()}']
    print('\n'.join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix='int8_') as tmp:
        model, fp32, int8 = write_files(tmp, settings.window)
        windows = window_rows(settings, model, fp32, int8)
        print('\n'.join(markdown_table(windows, WINDOW_COLUMNS)), flush=True)
        del model
        scans = scan_rows(settings, fp32, int8, tmp)
    print_report([*lines, '', f'study ConvNeXt-T UPerNet ({CONFIG}), untrained seeded weights',
                  '', *markdown_table(windows, WINDOW_COLUMNS), '',
                  *markdown_table(scans, SCAN_COLUMNS)], cli.command('int8', argv), settings.out)


if __name__ == '__main__':
    main()
