"""How much the sliding windows' overlap and size matter: time, mask and accuracy.

``benchmark.py --overlaps [--windows]`` runs a trained model (a work dir) with
each window size and overlap: the validation split through mmseg's test loop
(mIoU with its bootstrap interval, as ``tools/test.py`` reports it) and one
synthetic scan through ``tools/infer.py``'s path (seconds, windows, and the
share of its pixels whose class differs from the reference mask: the config's
window at the largest overlap). Fewer windows are faster in proportion; whether
the mask and the accuracy notice is what this measures, so a window and an
overlap can be chosen from numbers.
"""
import copy
import os
import tempfile
import time
from typing import List, Sequence

import numpy as np
import torch

DEFAULT_OVERLAPS = (0.0, 0.125, 0.25, 1 / 3, 0.5)


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

    from ..apis.model_loader import find_config_dump
    from ..runtime_checks import find_test_checkpoint
    from ..evaluation.artseg_metric import load_per_image
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
    from ..apis import count_windows, init_model, predict_class_ids
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

    from ..apis.model_loader import find_config_dump
    from .speed import built_for_one_size
    config = find_config_dump(work_dir)
    model = Config.fromfile(config).model
    crop = int(model.test_cfg['crop_size'][0])
    name = model.backbone.get('model_name')
    other = sorted(set(windows) - {crop})
    if other and name and built_for_one_size(name):
        raise ValueError(f'{config}: encoder {name} is built for {crop} px inputs; '
                         f'windows of {other} px cannot run on it (leave out --windows)')
    return crop


def paired_difference(confusions, reference_confusions) -> str:
    """mIoU minus the reference's on the same images, in points, with its paired
    interval (an interval that holds 0: no difference shown)."""
    from ..evaluation import paired_test
    if confusions is None or reference_confusions is None:
        return '-'
    d = paired_test(confusions, reference_confusions)
    return f'{d["difference"] * 100:+.2f} [{d["low"] * 100:+.2f}, {d["high"] * 100:+.2f}]'


def overlap_table(work_dir: str, overlaps: Sequence[float] = DEFAULT_OVERLAPS,
                  scan_size: int = 2048, window_batch: int = 4,
                  bf16: bool = False, windows: Sequence[int] = ()) -> List[str]:
    """One row per window size (default: the config's) and overlap; the reference
    mask is the config's window (else the first given) at the largest overlap."""
    from .scan_speed import synthetic_scan
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
    rows = [f'window size and overlap on a {scan_size}x{scan_size} synthetic scan and the '
            f'validation split, model {work_dir} (configured windows {crop} px, '
            f'window batch {window_batch}, {"bf16" if bf16 else "fp32"})', '',
            '| window | overlap | stride | windows (scan) | scan time (s) | scan pixels '
            f'changed vs window {reference_key[0]} at overlap {reference_key[1]:.3f} | '
            'val mIoU [95% CI] | val mIoU minus the reference\'s, paired [95% CI] | '
            'val damage IoU |',
            '|---|---|---|---|---|---|---|---|---|']
    for (window, overlap), (stride, scan, m) in results.items():
        changed = float((scan['mask'] != reference).mean()) * 100
        damage = m.get('damage_IoU')
        rows.append(f'| {window} | {overlap:.3f} | {stride} | {scan["windows"]} | '
                    f'{scan["seconds"]:.1f} | {changed:.3f}% | '
                    f'{m.get("mIoU", float("nan")):.2f} '
                    f'[{m.get("mIoU_ci_low", float("nan")):.2f}, '
                    f'{m.get("mIoU_ci_high", float("nan")):.2f}] | '
                    f'{paired_difference(m.get("confusions"), reference_confusions)} | '
                    f'{"-" if damage is None else f"{damage:.2f}"} |')
    return rows
