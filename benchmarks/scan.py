"""Speed and memory of segmenting one large scan, three ways on one model, so that
``tools/infer.py``'s path is measured against what mmseg offers:

- ``infer``: ``tools/infer.py``'s path, :func:`artseg_mm.apis.predict_class_ids`
  (uint8 image, window batches, class ids per finished row band), at each
  ``--slide-batch-sizes`` window batch, and in bf16 where the device has bf16 kernels;
- ``mmseg_slide``: mmseg's ``EncoderDecoder.slide_inference`` on the same
  built model (one window at a time, float image and logits at full size);
- ``mmseg_inferencer``: ``mmseg.apis.MMSegInferencer`` (its pipeline, then the
  model's own ``test_step``).

Each runs in a fresh process (clean peak RSS) and gives seconds, megapixels per
second, peak RSS above the built model, and the share of pixels whose class
differs from the first run's mask.

    python -m benchmarks.scan --slide-batch-sizes 1 4
    python -m benchmarks.scan --scan-size 2048 --scan-model work_dirs/convnext_tiny_upernet_demo
"""
import argparse
import functools
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np
import torch

from . import cli
from .child import run_in_child
from .study_configs import REPO_ROOT
from .table import Column, markdown_table, percent, print_report

METHODS = ('infer', 'mmseg_slide', 'mmseg_inferencer')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.scan',
        description="one large scan: tools/infer.py's path vs mmseg's slide_inference "
        'and MMSegInferencer')
    cli.add_device(parser)
    cli.add_threads(parser)
    parser.add_argument('--scan-model', default='configs/convnext_tiny_upernet_artefact.py',
                        help='work dir or config (relative to the repository root)')
    parser.add_argument('--scan-checkpoint', help='checkpoint for a --scan-model config')
    parser.add_argument('--scan-size', type=int, default=4096)
    cli.add_slide_batch_sizes(parser, "window batch sizes of infer.py's path")
    cli.add_out(parser)
    return parser


def synthetic_scan(size: int, seed: int = 0, tile: int = 256) -> np.ndarray:
    """A size x size BGR uint8 'scan' tiled from demo artworks (paper, canvas,
    photographs with damage), deterministic for a seed."""
    from artseg_mm.data_prep.demo_generator import MATERIAL_CONTENT, render_sample
    rng = np.random.default_rng(seed)
    materials = sorted(MATERIAL_CONTENT)
    tiles = [render_sample(rng, tile, materials[i % len(materials)])[0]
             for i in range(8)]
    scan = np.empty((size, size, 3), dtype=np.uint8)
    for k, y in enumerate(range(0, size, tile)):
        for j, x in enumerate(range(0, size, tile)):
            piece = tiles[(k * 3 + j) % len(tiles)]
            scan[y:y + tile, x:x + tile] = piece[:size - y, :size - x]
    return scan


def run_method(method: str, model_source: str, checkpoint: Optional[str], size: int,
               window_batch: Optional[int] = None, bf16: bool = False,
               device: str = 'cpu') -> dict:
    """Build the model, time one scan with ``method``; dict with seconds,
    mpix_per_s, base_mib, peak_mib, windows and the (H, W) uint8 mask."""
    from mmseg.apis import MMSegInferencer
    from mmseg.models.segmentors import EncoderDecoder

    from artseg_mm.apis import count_windows, inference_model_cfg, init_model, predict_class_ids
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    options = {}
    if window_batch is not None:
        options['model.test_cfg.batch_size'] = window_batch
    if bf16:
        options['model.test_cfg.autocast_dtype'] = 'bfloat16'
    torch.manual_seed(0)  # an untrained model gets the same weights in every process
    model = init_model(model_source, checkpoint, device=device, cfg_options=options)
    image = synthetic_scan(size)
    inferencer = None
    if method == 'mmseg_inferencer':
        # its own build of the config must not fetch pretrained weights either
        cfg = model.cfg.copy()
        cfg.model = inference_model_cfg(cfg)
        inferencer = MMSegInferencer(model=cfg, weights=model.checkpoint_path, device=device)
        inferencer.model = model  # the same weights, and no second copy
    with torch.inference_mode():  # warm-up: one window
        crop = tuple(model.test_cfg.get('crop_size', (size, size)))
        predict_class_ids(model, image[:crop[0], :crop[1]])
    base = reset_peak_rss()
    start = time.perf_counter()
    with torch.inference_mode():
        if method == 'infer':
            mask = predict_class_ids(model, image)
        elif method == 'mmseg_inferencer':
            mask = inferencer(image, return_datasamples=True).pred_sem_seg.data[0]
            mask = mask.cpu().numpy().astype(np.uint8)
        else:
            batch = model.data_preprocessor(
                dict(inputs=[torch.from_numpy(image.transpose(2, 0, 1).copy())],
                     data_samples=None), False)['inputs']
            metas = [dict(ori_shape=(size, size), img_shape=(size, size),
                          pad_shape=(size, size))]
            logits = EncoderDecoder.slide_inference(model, batch, metas)
            mask = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, mpix_per_s=size * size / 1e6 / seconds, base_mib=base,
                peak_mib=peak_rss_mib(), windows=count_windows(model, (size, size)),
                mask=mask)


def measure_in_child(spec: dict, settings) -> dict:
    """In a fresh process: one method of :func:`run_method`; the mask goes to
    ``spec['mask_path']`` (.npy), the rest is returned."""
    import artseg_mm  # noqa: F401
    model = spec['model'] if os.path.isabs(spec['model']) else os.path.join(REPO_ROOT,
                                                                          spec['model'])
    result = run_method(spec['method'], model, spec['checkpoint'], spec['size'],
                        spec['batch'], spec['bf16'], settings.device)
    np.save(spec['mask_path'], result.pop('mask'))
    return result


@dataclass
class ScanRow:
    method: str
    window_batch: Optional[int]  # None: the config's
    precision: str
    windows: int
    seconds: float
    mpix_per_s: float
    peak_above_model_mib: float
    changed_percent: float  # pixels whose class differs from the first row's mask


COLUMNS = [
    Column('method', 'method'), Column('window batch', lambda r: r.window_batch or 'config'),
    Column('precision', 'precision'), Column('windows', 'windows'),
    Column('time (s)', 'seconds', '.1f'), Column('Mpx/s', 'mpix_per_s', '.3f'),
    Column('peak RSS above the built model (MiB)', 'peak_above_model_mib', '.0f'),
    Column('pixels changed vs first row', 'changed_percent', percent('.4f'))]


def bf16_available(device: torch.device) -> bool:
    """bf16 rows are timed on CUDA and on a CPU with bf16 kernels."""
    from artseg_mm.engine import cpu_supports_bf16
    return device.type == 'cuda' or cpu_supports_bf16()


def measure_scan(settings, device,
                 child: Optional[Callable[[dict], dict]] = None) -> List[ScanRow]:
    """``infer`` per window batch (and in bf16 at the last one, where available),
    then mmseg's two ways; ``child(spec)`` runs one in a fresh process."""
    child = child or functools.partial(run_in_child, 'scan', settings=settings)
    runs = [('infer', b, False) for b in settings.slide_batch_sizes]
    if bf16_available(device):
        runs.append(('infer', settings.slide_batch_sizes[-1], True))
    runs += [('mmseg_slide', None, False), ('mmseg_inferencer', None, False)]
    rows = []
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for k, (method, batch, use_bf16) in enumerate(runs):
            mask_path = os.path.join(tmp, f'{k}.npy')
            r = child(dict(method=method, batch=batch, bf16=use_bf16,
                           model=settings.scan_model, checkpoint=settings.scan_checkpoint,
                           size=settings.scan_size, mask_path=mask_path))
            mask = np.load(mask_path)
            reference = mask if reference is None else reference
            rows.append(ScanRow(method, batch, 'bf16' if use_bf16 else 'fp32', r['windows'],
                                r['seconds'], r['mpix_per_s'], r['peak_mib'] - r['base_mib'],
                                float((mask != reference).mean()) * 100))
            print(markdown_table(rows[-1:], COLUMNS)[-1], flush=True)
    return rows


def report_lines(rows: List[ScanRow], settings, device) -> List[str]:
    note = ('' if bf16_available(device) else 'bf16: not run, this CPU has no bf16 kernels '
            '(avx512_bf16/amx_bf16); infer.py --bf16 falls back to fp32 here')
    return [f'one {settings.scan_size}x{settings.scan_size} scan, model {settings.scan_model}',
            note, '', *markdown_table(rows, COLUMNS)]


def main(argv: Optional[List[str]] = None) -> List[ScanRow]:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    device = cli.start(settings)
    lines = cli.header_lines(settings, device)
    print('\n'.join(lines), flush=True)
    rows = measure_scan(settings, device)
    print_report([*lines, '', *report_lines(rows, settings, device)],
                 cli.command('scan', argv), settings.out)
    return rows


if __name__ == '__main__':
    main()
