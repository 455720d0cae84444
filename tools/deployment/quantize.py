"""Quantize an exported ONNX model to int8 for CPU collections, and say what it changes.

Calibrates on the inference windows of real images (the train split of the config's
data root by default: images the model was trained on, kept apart from the images
it is judged on; or a folder of your scans), writes the int8 file with the source's
metadata and a record of its calibration, then segments the config's test data
with both files and prints the share of pixels whose class changed and mIoU /
damage IoU of both with the paired interval and test of the study (recorded in the
file too). Exits 1 when more pixels changed than ``--max-changed`` (percent), 2 on
a usage error.

    python tools/deployment/export.py work_dirs/convnext_tiny_upernet_demo --format onnx --out model.onnx
    python tools/deployment/quantize.py model.onnx --out model_int8.onnx
    python tools/infer.py scans/ --model model_int8.onnx --out work_dirs/infer_int8
"""
import argparse
import os.path as osp
import sys
from typing import Optional

import numpy as np

from artseg_mm.deployment.quantize import (MAX_CHANGED_PERCENT, add_to_record,
                                           calibration_images, calibration_window,
                                           check_node_names, int8_kernels,
                                           measure_agreement, quantize_onnx)
from artseg_mm.deployment.runtime import ExportedSegmentor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='an exported float32 .onnx file (tools/deployment/export.py)')
    parser.add_argument('--out', required=True, help='the int8 .onnx file to write')
    parser.add_argument('--calibration', default='train', help="a split of the config's data "
                        "root ('train', the default) or a folder of images")
    parser.add_argument('--no-agreement', action='store_true', help='skip the comparison '
                        "with float32 on the config's test data")
    parser.add_argument('--max-changed', type=float, default=MAX_CHANGED_PERCENT,
                        help='largest share of pixels (percent) whose class may change')
    parser.add_argument('--float-nodes', nargs='+', default=[], metavar='NODE',
                        help='ONNX node names to keep in float32 (e.g. the classifier)')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    return parser.parse_args(argv)


def config_dataset(exported: ExportedSegmentor, split: Optional[str] = None):
    """The config's test dataset, or (``split``) the same pointed at that split."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(exported.cfg.get('default_scope', 'mmseg'))
    dataset_cfg = exported.cfg.test_dataloader.dataset.copy()
    if split is not None:
        prefix = dict(dataset_cfg.get('data_prefix') or {})
        prefix.update(img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}')
        dataset_cfg.data_prefix = prefix
    dataset = DATASETS.build(dataset_cfg)
    if not len(dataset):
        raise ValueError(f'{dataset.data_root}: no images in {dataset_cfg.data_prefix}')
    return dataset


def image_paths(dataset) -> list:
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


def describe(name, pick, agreement, result) -> str:
    """``name`` (``pick(metrics)``): both models' values on all images, and the paired
    comparison."""
    from artseg_mm.evaluation.functional import metrics_from_confusion
    value = {which: 100 * float(pick(metrics_from_confusion(conf.sum(axis=0))))
             for which, conf in (('float32', agreement.conf_float),
                                 ('int8', agreement.conf_int8))}
    return (f'{name}: float32 {value["float32"]:.2f}, int8 {value["int8"]:.2f}; int8 - '
            f'float32 = {100 * result["difference"]:+.2f} points [{100 * result["low"]:+.2f}, '
            f'{100 * result["high"]:+.2f}] (95%, paired over images), paired test p = '
            f'{result["p_value"]:.2g}')


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.model.endswith('.onnx') or not args.out.endswith('.onnx'):
        print('quantize: the model and --out must be .onnx files', file=sys.stderr)
        return 2
    if osp.exists(args.out) and not args.force:
        print(f'quantize: {args.out} exists; --force replaces it', file=sys.stderr)
        return 2
    if osp.abspath(args.out) == osp.abspath(args.model):
        print('quantize: --out is the float32 model itself; write the int8 file beside it',
              file=sys.stderr)
        return 2
    print(f'CPU int8 kernels: {int8_kernels()}')
    try:  # everything the user gave is checked before the int8 file is written
        exported = ExportedSegmentor(args.model)
        calibration_window(exported)
        check_node_names(args.model, args.float_nodes)
        if osp.isdir(args.calibration):
            images, where = calibration_images(args.calibration), f'folder {args.calibration}'
        else:
            dataset = config_dataset(exported, args.calibration)
            images = image_paths(dataset)
            where = f'the {args.calibration} split of {dataset.data_root}'
        test_dataset = None if args.no_agreement else config_dataset(exported)
        record = quantize_onnx(args.model, args.out, images, where, args.float_nodes)
    except (FileNotFoundError, ValueError) as error:
        print(f'quantize: {error}', file=sys.stderr)
        return 2
    print(f'wrote {args.out}: calibrated on {record.windows} windows of {record.images} '
          f'images ({where}); {record.weights} weights, {record.activations} activations')
    if test_dataset is None:
        return 0
    from artseg_mm.evaluation.statistics import paired_test
    tested = image_paths(test_dataset)
    test_data = test_dataset.data_prefix['img_path']
    truths = [test_dataset[i]['data_samples'].gt_sem_seg.data[0].numpy()
              for i in range(len(test_dataset))]
    agreement = measure_agreement(args.model, args.out, tested, truths,
                                  max(exported.out_channels, 2))
    classes = exported.dataset_meta['classes']
    overlap = len(set(map(osp.abspath, tested)) & set(map(osp.abspath, images)))
    print(f"agreement on the config's test data, {test_data} ({len(truths)} images"
          + (f', {overlap} of them also calibration images' if overlap else '') + '): '
          f'{agreement.changed_percent:.3f}% of pixels change class (limit {args.max_changed}%)')
    print(describe('mIoU', lambda m: m['mIoU'], agreement,
                   paired_test(agreement.conf_int8, agreement.conf_float, 'mIoU')))
    damage = next((i for i, c in enumerate(classes) if c.lower() == 'damage'), None)
    if damage is not None and np.asarray(agreement.conf_float)[:, damage].sum():
        print(describe('damage IoU', lambda m: m['IoU'][damage], agreement, paired_test(
            agreement.conf_int8, agreement.conf_float, f'IoU.{damage}')))
    add_to_record(args.out, agreement=dict(
        split=test_data, images=len(truths),
        changed_percent=round(agreement.changed_percent, 4), limit_percent=args.max_changed))
    if agreement.changed_percent > args.max_changed:
        print(f'quantize: {agreement.changed_percent:.3f}% of pixels changed, above '
              f'--max-changed {args.max_changed}%: keep sensitive layers in float32 '
              '(--float-nodes) or use the float32 file', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
