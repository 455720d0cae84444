"""Test (and evaluate) a segmentor: mmseg's ``tools/test.py`` with the same flags.

Differences, all additions: ``--show-dir`` writes one overlay per test image
(image | ground truth | prediction) through ``ArtSegVisualizationHook``; the
metric tables (``metrics.json``, ``per_class.csv``, ``per_group.csv``,
``per_image.json``) go to the work dir, where mmseg's ``--work-dir`` help puts
the metric results, and ``--out`` holds the prediction masks only, as mmseg's;
a missing dataset is reported with how to make one; ``--launcher pytorch`` works
on CPU-only machines; the loaded model is tested through
``artseg_mm.acceleration.optimize_for_inference`` unless ``--plain-model``.
Checkpoints load with ``weights_only=True``; one that does not fit the model
stops with the keys that differ.
"""
import argparse
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

import artseg_mm  # noqa: F401  (registers modules, the weights-only checkpoint loader)
from artseg_mm.engine import close_distributed, prepare_cpu_distributed
from artseg_mm.cli import (add_cfg_options, add_launcher_options, check_dataset_exists,
                           load_run_config, parse_launch_args)
from mmseg.registry import RUNNERS


def parse_args():
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped into '
        'the directory as json (and the metric tables as JSON/CSV)')
    parser.add_argument(
        '--out', type=str,
        help='directory for the prediction masks (class ids, one PNG per image)')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--show-dir', help='directory where one overlay per image is written')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--plain-model', action='store_true',
                        help='test the model as built, without the inference speed-ups '
                        '(artseg_mm.acceleration.optimize_for_inference: conv+BN folding, '
                        'bf16 weights, NNPACK head convs)')
    add_cfg_options(parser)
    add_launcher_options(parser)
    return parse_launch_args(parser)


def trigger_visualization_hook(cfg: Config, args) -> Config:
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks: '
            "visualization=dict(type='ArtSegVisualizationHook')")
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if hook.get('type') == 'ArtSegVisualizationHook':
            hook['show_dir'] = args.show_dir
        else:  # mmseg's own hook writes through the visualizer's save_dir
            cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()

    cfg = load_run_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint

    check_dataset_exists(cfg.test_dataloader.dataset)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    if cfg.test_evaluator.get('type') == 'ArtSegMetric':
        cfg.test_evaluator['table_dir'] = cfg.work_dir
        cfg.test_evaluator['checkpoint'] = osp.abspath(args.checkpoint)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    if not args.plain_model:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='InferenceOptimizationHook')]
    prepare_cpu_distributed(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()
    del runner  # DDP holds the process group: release it first
    close_distributed()


if __name__ == '__main__':
    main()
