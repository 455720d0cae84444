"""Sliding-window inference of our model on one large random image: our batched
windows, summed in place into one output, at each ``--slide-batch-sizes`` window
batch, against mmseg's stock ``slide_inference`` on the same model.

Each run is a fresh process (:mod:`benchmarks.child`), so its peak memory is its
own: memory should grow with the window batch, not with the image area.

    python -m benchmarks.slide --encoders convnext_tiny --slide-batch-sizes 1 2 4
"""
import argparse
import functools
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch

from . import cli
from .child import run_in_child
from .study_configs import build_mm_model, image_metas, our_cfg
from .table import Column, markdown_table, print_report
from .timing import precision_autocast, sync


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.slide',
        description="sliding-window inference: our batched windows vs mmseg's loop")
    cli.add_encoders(parser)
    cli.add_device(parser)
    cli.add_amp(parser)
    cli.add_threads(parser)
    cli.add_cfg_options(parser)
    parser.add_argument('--slide-size', type=int, default=4096)
    cli.add_slide_batch_sizes(parser, 'window batch sizes of our sliding windows')
    parser.add_argument('--no-slide-stock', action='store_true',
                        help="skip mmseg's stock slide_inference reference run")
    cli.add_out(parser)
    return parser


@dataclass
class SlideRow:
    encoder: str
    method: str
    window_batch: int
    windows: int
    seconds: float
    peak_mib: float
    base_mib: float  # after the model was built, before the image
    output_mib: float


COLUMNS = [
    Column('encoder', 'encoder'), Column('method', 'method'),
    Column('window batch', 'window_batch'), Column('windows', 'windows'),
    Column('time (s)', 'seconds', '.1f'),
    Column('peak memory MiB (above built model)',
           lambda r: f'{r.peak_mib:.0f} ({r.peak_mib - r.base_mib:.0f})'),
    Column('output MiB', 'output_mib', '.0f')]


def measure_in_child(spec: dict, settings) -> dict:
    """In a fresh process: our model, sliding-window inference on one
    --slide-size square image with window batch size ``spec['batch']``
    (``spec['stock']``: mmseg's own ``slide_inference`` instead)."""
    from artseg_mm.acceleration import optimize_for_inference
    from artseg_mm.models.segmentors import slide_windows
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    device = torch.device(settings.device)
    cfg = our_cfg(spec['encoder'], None, settings.cfg_options)
    test_cfg = dict(cfg.model.test_cfg)
    test_cfg.update(mode='slide', crop_size=tuple(test_cfg['crop_size']),
                    stride=tuple(test_cfg['stride']), batch_size=spec['batch'])
    cfg.model.test_cfg = test_cfg
    model = optimize_for_inference(build_mm_model(cfg.model).to(device).eval(), bf16=(
        device.type == 'cpu' and settings.amp))  # as infer.py predicts
    s = settings.slide_size
    x = torch.randn(1, 3, s, s, device=device)
    crop = test_cfg['crop_size']
    with torch.inference_mode(), precision_autocast(settings, device):  # warm-up, one window batch
        warm = torch.randn(spec['batch'], 3, *crop, device=device)
        model.encode_decode(warm, image_metas(warm))
    del warm
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = (torch.cuda.memory_allocated() / 2**20 if device.type == 'cuda'
            else reset_peak_rss())
    t0 = time.perf_counter()
    with torch.inference_mode(), precision_autocast(settings, device):
        if spec['stock']:
            from mmengine.config import ConfigDict
            from mmseg.models.segmentors import EncoderDecoder
            model.test_cfg = ConfigDict(test_cfg)
            out = EncoderDecoder.slide_inference(model, x, image_metas(x))
        else:
            out = model.inference(x, image_metas(x))
    sync(device)
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == 'cuda'
            else peak_rss_mib())
    n_windows = len(slide_windows(s, s, test_cfg['crop_size'], test_cfg['stride']))
    return dict(seconds=seconds, base=base, peak=peak, windows=n_windows,
                output_mib=out.numel() * out.element_size() / 2**20)


def measure_slide(settings, child: Optional[Callable[[dict], dict]] = None) -> List[SlideRow]:
    """One row per encoder and window batch, then mmseg's stock loop (unless
    ``--no-slide-stock``); ``child(spec)`` runs one in a fresh process."""
    child = child or functools.partial(run_in_child, 'slide', settings=settings)
    rows = []
    for encoder in settings.encoders:
        runs = [(False, b) for b in settings.slide_batch_sizes]
        if not settings.no_slide_stock:
            runs.append((True, 1))
        for stock, batch in runs:
            r = child(dict(encoder=encoder, batch=batch, stock=stock))
            rows.append(SlideRow(
                encoder, 'mmseg stock slide_inference' if stock
                else 'ours (batched, in-place accumulation)', batch, r['windows'],
                r['seconds'], r['peak'], r['base'], r['output_mib']))
            print(markdown_table(rows[-1:], COLUMNS)[-1], flush=True)
    return rows


def report_lines(rows: List[SlideRow], settings) -> List[str]:
    return [f'sliding-window inference, 1x3x{settings.slide_size}x{settings.slide_size}', '',
            *markdown_table(rows, COLUMNS)]


def main(argv: Optional[List[str]] = None) -> List[SlideRow]:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    device = cli.start(settings)
    lines = cli.header_lines(settings, device)
    print('\n'.join(lines), flush=True)
    rows = measure_slide(settings)
    print_report([*lines, '', *report_lines(rows, settings)], cli.command('slide', argv),
                 settings.out)
    return rows


if __name__ == '__main__':
    main()
