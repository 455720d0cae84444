"""How much the sliding windows' overlap matters: time, mask and accuracy.

``benchmark.py --overlaps`` runs a trained model (a work dir) with each window
overlap: the validation split through mmseg's test loop (mIoU with its
bootstrap interval, as ``tools/test.py`` reports it) and one synthetic scan
through ``tools/infer.py``'s path (seconds, windows, and the share of its
pixels whose class differs from the largest overlap's mask). Fewer windows
are faster in proportion; whether the mask and the accuracy notice is what
this measures, so an overlap can be chosen from numbers.
"""
import copy
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


def validation_metrics(work_dir: str, stride: int) -> dict:
    """mmseg's test loop on the run's validation split, windows at ``stride``."""
    from mmengine.config import Config

    from mmseg.registry import RUNNERS

    from ..apis.model_loader import find_config_dump
    from ..runtime_checks import find_test_checkpoint
    cfg = Config.fromfile(find_config_dump(work_dir))
    cfg.model.test_cfg.stride = (stride, stride)
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    cfg.load_from = find_test_checkpoint(work_dir)
    cfg.log_level = 'WARNING'
    cfg.default_hooks.pop('visualization', None)
    # mmengine keeps one visualizer per name; each run writes to its own folder
    cfg.visualizer['name'] = f'window_overlap_{stride}_{time.time_ns()}'
    with tempfile.TemporaryDirectory() as tmp:
        cfg.work_dir = tmp
        if cfg.test_evaluator.get('type') == 'ArtSegMetric':
            cfg.test_evaluator['table_dir'] = tmp
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else None
        if runner is None:
            from mmengine.runner import Runner
            runner = Runner.from_cfg(cfg)
        return runner.test()


def scan_mask(work_dir: str, stride: int, image: np.ndarray, window_batch: int,
              bf16: bool) -> dict:
    """``tools/infer.py``'s path on ``image`` with windows at ``stride``."""
    from ..apis import count_windows, init_model, predict_class_ids
    options = {'model.test_cfg.stride': (stride, stride),
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


def overlap_table(work_dir: str, overlaps: Sequence[float] = DEFAULT_OVERLAPS,
                  scan_size: int = 2048, window_batch: int = 4,
                  bf16: bool = False) -> List[str]:
    """One row per overlap; the mask of the largest overlap is the reference."""
    from ..apis import init_model
    from .scan_speed import synthetic_scan
    crop = int(init_model(work_dir).test_cfg['crop_size'][0])
    image = synthetic_scan(scan_size)
    results = []
    for overlap in sorted(overlaps):
        stride = stride_for(crop, overlap)
        scan = scan_mask(work_dir, stride, image, window_batch, bf16)
        metrics = validation_metrics(work_dir, stride)
        results.append((overlap, stride, scan, metrics))
        print(f'overlap {overlap:.3f}: stride {stride}, {scan["windows"]} windows, '
              f'{scan["seconds"]:.1f} s, val mIoU {metrics.get("mIoU")}', flush=True)
    reference = results[-1][2]['mask']
    rows = [f'window overlap on a {scan_size}x{scan_size} synthetic scan and the '
            f'validation split, model {work_dir} ({crop} px windows, window batch '
            f'{window_batch}, {"bf16" if bf16 else "fp32"})', '',
            '| overlap | stride | windows (scan) | scan time (s) | scan pixels changed vs '
            f'overlap {results[-1][0]:.3f} | val mIoU [95% CI] | val damage IoU |',
            '|---|---|---|---|---|---|---|']
    for overlap, stride, scan, m in results:
        changed = float((scan['mask'] != reference).mean()) * 100
        damage = m.get('damage_IoU')
        rows.append(f'| {overlap:.3f} | {stride} | {scan["windows"]} | {scan["seconds"]:.1f} | '
                    f'{changed:.3f}% | {m.get("mIoU", float("nan")):.2f} '
                    f'[{m.get("mIoU_ci_low", float("nan")):.2f}, '
                    f'{m.get("mIoU_ci_high", float("nan")):.2f}] | '
                    f'{"-" if damage is None else f"{damage:.2f}"} |')
    return rows
