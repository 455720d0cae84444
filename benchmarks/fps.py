"""Images per second on a config's test split: mmseg's ``benchmark.py`` contract.

Why it exists: mmseg 1.2.2's ``tools/analysis_tools/benchmark.py`` times images
6-200 of the test split and reports NaN (no timed image reaches 200) on any
split under 200 images, such as ARTeFACT's validation split; it also loads the
checkpoint non-strictly. Here every image of the split up to 200 is used, the
first few as warm-up (5, or fewer on a small split, at least one timed), with the
model loaded strictly by :func:`artseg_mm.apis.init_model`. The flags, the printed
lines and the ``fps_<timestamp>.json`` are mmseg's, with the counts added.

    python -m benchmarks.fps CONFIG CHECKPOINT --work-dir DIR
"""
import argparse
import os
import os.path as osp
import time
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.fileio import dump

MAX_IMAGES = 200
WARMUP = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.fps',
                                     description='MMSeg benchmark a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--log-interval', type=int, default=50, help='interval of logging')
    parser.add_argument('--work-dir', help='if specified, the results will be dumped '
                        'into the directory as json')
    parser.add_argument('--repeat-times', type=int, default=1)
    return parser


def warmup_and_timed(num_images: int) -> tuple:
    """(warm-up images, timed images) for a split of ``num_images``."""
    if num_images < 2:
        raise ValueError(f'the test split has {num_images} image(s); timing needs at '
                         'least 2 (one warm-up, one timed)')
    total = min(num_images, MAX_IMAGES)
    warmup = min(WARMUP, total // 2)
    return warmup, total - warmup


def time_split(model, cfg: Config, log_interval: int) -> tuple:
    """(images per second over the timed images of one pass at batch size 1,
    warm-up images, timed images)."""
    from mmengine.runner import Runner
    loader_cfg = dict(cfg.test_dataloader, batch_size=1)
    data_loader = Runner.build_dataloader(loader_cfg)
    warmup, timed = warmup_and_timed(len(data_loader.dataset))
    cuda = next(model.parameters()).is_cuda
    elapsed_total = 0.
    for i, data in enumerate(data_loader):
        if i == warmup + timed:
            break
        data = model.data_preprocessor(data, False)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            model(data['inputs'], data['data_samples'], mode='predict')
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            elapsed_total += time.perf_counter() - start
            if (i + 1 - warmup) % log_interval == 0:
                print(f'Done image [{i + 1:<3}/ {warmup + timed}], '
                      f'fps: {(i + 1 - warmup) / elapsed_total:.2f} img / s')
    return timed / elapsed_total, warmup, timed


def main(argv: Optional[List[str]] = None) -> dict:
    """mmseg's ``benchmark.py CONFIG CHECKPOINT``: prints and dumps the fps."""
    from artseg_mm.apis import init_model
    args = build_parser().parse_args(argv)
    cfg = Config.fromfile(args.config)
    work_dir = args.work_dir or osp.join('./work_dirs',
                                         osp.splitext(osp.basename(args.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    result = dict(config=args.config, unit='img / s')
    fps_list = []
    for index in range(args.repeat_times):
        print(f'Run {index + 1}:')
        model = init_model(cfg, args.checkpoint, device=device)
        fps, warmup, timed = time_split(model, cfg, args.log_interval)
        print(f'Overall fps: {fps:.2f} img / s\n')
        result[f'overall_fps_{index + 1}'] = round(fps, 2)
        fps_list.append(fps)
    result.update(average_fps=round(float(np.mean(fps_list)), 2),
                  fps_variance=round(float(np.var(fps_list)), 4),
                  warmup_images=warmup, timed_images=timed, device=device)
    print(f'Average fps of {args.repeat_times} evaluations: {result["average_fps"]} '
          f'({timed} images timed after {warmup} warm-up, {device})')
    print(f'The variance of {args.repeat_times} evaluations: {result["fps_variance"]}')
    dump(result, osp.join(work_dir, f'fps_{timestamp}.json'), indent=4)
    return result


if __name__ == '__main__':
    main()
