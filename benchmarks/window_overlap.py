"""How much the sliding windows' overlap and size matter: time, mask and accuracy.

Runs a trained model (a work dir) with each window size and overlap: the
validation split through mmseg's test loop (mIoU with its bootstrap interval, as
``tools/test.py`` reports it) and one synthetic scan through ``tools/infer.py``'s
path (seconds, windows, and the share of its pixels whose class differs from the
reference mask: the config's window at the largest overlap). Fewer windows are
faster in proportion; whether the mask and the accuracy notice is what this
measures, so a window and an overlap can be chosen from numbers.

    python -m benchmarks.window_overlap --overlaps 0 0.25 0.5 --scan-model WORK_DIR
    python -m benchmarks.window_overlap --overlaps 0.25 --windows 96 128 256 --scan-model WORK_DIR
"""
import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import cli
from .table import Column, markdown_table, percent, print_report

DEFAULT_OVERLAPS = (0.0, 0.125, 0.25, 1 / 3, 0.5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.window_overlap',
        description='time and score the sliding windows of a trained model at window '
        'overlaps and sizes: a synthetic scan and the validation split')
    cli.add_threads(parser)
    parser.add_argument('--overlaps', type=float, nargs='+', default=list(DEFAULT_OVERLAPS),
                        metavar='FRACTION', help='window overlaps, fractions of a window '
                        '(default: 0 0.125 0.25 0.333 0.5)')
    parser.add_argument('--scan-model', required=True, help='the trained work dir')
    parser.add_argument('--overlap-scan-size', type=int, default=2048)
    parser.add_argument('--windows', type=int, nargs='+', default=[], metavar='PIXELS',
                        help="these window sizes too (default: the config's); encoders "
                        'built for one input size take only theirs')
    cli.add_slide_batch_sizes(parser, 'the last is the window batch of the scan (default 4)')
    cli.add_out(parser)
    return parser


def stride_for(crop: int, overlap: float) -> int:
    """The stride of windows of ``crop`` pixels that overlap by ``overlap`` of a window."""
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    return max(1, round(crop * (1 - overlap)))


def validation_metrics(work_dir: str, window: int, stride: int) -> dict:
    """mmseg's test loop on the run's validation split, ``window`` px windows at
    ``stride``: its metrics and, with ArtSegMetric, each image's confusion
    ('confusions', images in path order)."""
    from mmengine.config import Config

    from mmseg.registry import RUNNERS

    from artseg_mm.apis.model_loader import find_config_dump
    from artseg_mm.checkpoints import find_test_checkpoint
    from artseg_mm.evaluation.artseg_metric import load_per_image
    cfg = Config.fromfile(find_config_dump(work_dir))
    cfg.model.test_cfg.crop_size = (window, window)
    cfg.model.test_cfg.stride = (stride, stride)
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    cfg.load_from = find_test_checkpoint(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.pop('visualization', None)
    # mmengine keeps one visualizer per name; each run writes to its own folder
    cfg.visualizer['name'] = f'window_overlap_{window}_{stride}_{time.time_ns()}'
    with tempfile.TemporaryDirectory() as tmp:
        cfg.work_dir = tmp
        if cfg.test_evaluator.get('type') == 'ArtSegMetric':
            cfg.test_evaluator['table_dir'] = tmp
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else None
        if runner is None:
            from mmengine.runner import Runner
            runner = Runner.from_cfg(cfg)
        metrics = dict(runner.test())
        per_image = os.path.join(tmp, 'per_image.json')
        if os.path.isfile(per_image):  # ArtSegMetric's: the paired comparison's input
            images = load_per_image(per_image)
            order = np.argsort([image['img_path'] for image in images['images']])
            metrics['confusions'] = images['confusions'][order]
        return metrics


def scan_mask(work_dir: str, window: int, stride: int, image: np.ndarray, window_batch: int,
              bf16: bool) -> dict:
    """``tools/infer.py``'s path on ``image`` with ``window`` px windows at ``stride``."""
    from artseg_mm.apis import count_windows, init_model, predict_class_ids
    options = {'model.test_cfg.crop_size': (window, window),
               'model.test_cfg.stride': (stride, stride),
               'model.test_cfg.batch_size': window_batch}
    if bf16:
        options['model.test_cfg.autocast_dtype'] = 'bfloat16'
    model = init_model(work_dir, cfg_options=options)
    start = time.perf_counter()
    with torch.inference_mode():
        mask = predict_class_ids(model, image)
    return dict(seconds=time.perf_counter() - start, mask=mask,
                windows=count_windows(model, image.shape[:2]),
                crop=tuple(model.test_cfg['crop_size']))


def check_window_sizes(work_dir: str, windows: Sequence[int]) -> int:
    """The config's window size; a clear error for windows its encoder cannot take
    (a timm encoder built for one input size, such as Swin's or CoaT's)."""
    from mmengine.config import Config

    from artseg_mm.apis.model_loader import find_config_dump

    from .study_configs import built_for_one_size
    config = find_config_dump(work_dir)
    model = Config.fromfile(config).model
    crop = int(model.test_cfg['crop_size'][0])
    name = model.backbone.get('model_name')
    other = sorted(set(windows) - {crop})
    if other and name and built_for_one_size(name):
        raise ValueError(f'{config}: encoder {name} is built for {crop} px inputs; '
                         f'windows of {other} px cannot run on it (leave out --windows)')
    return crop


def paired_difference(confusions, reference_confusions) -> Optional[dict]:
    """mIoU minus the reference's on the same images, in points, with its paired
    interval (``difference``, ``low``, ``high``; an interval that holds 0: no
    difference shown); None without per-image confusions."""
    from artseg_mm.evaluation import paired_test
    if confusions is None or reference_confusions is None:
        return None
    d = paired_test(confusions, reference_confusions)
    return dict(difference=d['difference'] * 100, low=d['low'] * 100, high=d['high'] * 100)


@dataclass
class OverlapRow:
    """One window size at one overlap: the scan's numbers and the validation split's."""
    window: int
    overlap: float
    stride: int
    windows: int  # on the scan
    seconds: float  # the scan's
    changed_percent: float  # scan pixels whose class differs from the reference's mask
    miou: float
    miou_low: float
    miou_high: float
    miou_minus_reference: Optional[dict]  # paired_difference's, in points
    damage_iou: Optional[float]


@dataclass
class OverlapStudy:
    work_dir: str
    scan_size: int
    window_batch: int
    bf16: bool
    configured_window: int
    reference: Tuple[int, float]  # (window, overlap) whose mask and mIoU the rows compare to
    rows: List[OverlapRow] = field(default_factory=list)


def _interval(d: Optional[dict]) -> Optional[str]:
    return None if d is None else f'{d["difference"]:+.2f} [{d["low"]:+.2f}, {d["high"]:+.2f}]'


def columns(reference: Tuple[int, float]) -> List[Column]:
    return [
        Column('window', 'window'), Column('overlap', 'overlap', '.3f'),
        Column('stride', 'stride'), Column('windows (scan)', 'windows'),
        Column('scan time (s)', 'seconds', '.1f'),
        Column(f'scan pixels changed vs window {reference[0]} at overlap {reference[1]:.3f}',
               'changed_percent', percent('.3f')),
        Column('val mIoU [95% CI]',
               lambda r: f'{r.miou:.2f} [{r.miou_low:.2f}, {r.miou_high:.2f}]'),
        Column("val mIoU minus the reference's, paired [95% CI]",
               lambda r: _interval(r.miou_minus_reference)),
        Column('val damage IoU', 'damage_iou', '.2f')]


def measure_overlaps(work_dir: str, overlaps: Sequence[float] = DEFAULT_OVERLAPS,
                     scan_size: int = 2048, window_batch: int = 4,
                     bf16: bool = False, windows: Sequence[int] = ()) -> OverlapStudy:
    """One row per window size (default: the config's) and overlap; the reference
    is the config's window (else the first given) at the largest overlap."""
    from .scan import synthetic_scan
    crop = check_window_sizes(work_dir, windows)
    windows = sorted(set(windows) or {crop})
    image = synthetic_scan(scan_size)
    results = {}
    for window in windows:
        for overlap in sorted(overlaps):
            stride = stride_for(window, overlap)
            scan = scan_mask(work_dir, window, stride, image, window_batch, bf16)
            metrics = validation_metrics(work_dir, window, stride)
            results[(window, overlap)] = (stride, scan, metrics)
            print(f'window {window}, overlap {overlap:.3f}: stride {stride}, '
                  f'{scan["windows"]} windows, {scan["seconds"]:.1f} s, '
                  f'val mIoU {metrics.get("mIoU")}', flush=True)
    reference_key = (crop if crop in windows else windows[0], max(overlaps))
    reference = results[reference_key][1]['mask']
    reference_confusions = results[reference_key][2].get('confusions')
    study = OverlapStudy(work_dir, scan_size, window_batch, bf16, crop, reference_key)
    nan = float('nan')
    for (window, overlap), (stride, scan, m) in results.items():
        study.rows.append(OverlapRow(
            window, overlap, stride, scan['windows'], scan['seconds'],
            float((scan['mask'] != reference).mean()) * 100,
            m.get('mIoU', nan), m.get('mIoU_ci_low', nan), m.get('mIoU_ci_high', nan),
            paired_difference(m.get('confusions'), reference_confusions),
            m.get('damage_IoU')))
    return study


def report_lines(study: OverlapStudy) -> List[str]:
    return [f'window size and overlap on a {study.scan_size}x{study.scan_size} synthetic scan '
            f'and the validation split, model {study.work_dir} (configured windows '
            f'{study.configured_window} px, window batch {study.window_batch}, '
            f'{"bf16" if study.bf16 else "fp32"})', '',
            *markdown_table(study.rows, columns(study.reference))]


def main(argv: Optional[List[str]] = None) -> OverlapStudy:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    device = cli.start(settings)
    lines = cli.header_lines(settings, device)
    print('\n'.join(lines), flush=True)
    study = measure_overlaps(settings.scan_model, settings.overlaps,
                             settings.overlap_scan_size, settings.slide_batch_sizes[-1],
                             windows=settings.windows)
    print_report([*lines, '', *report_lines(study)], cli.command('window_overlap', argv),
                 settings.out)
    return study


if __name__ == '__main__':
    main()
