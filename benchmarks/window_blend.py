"""Does blending the sliding windows with a Gaussian (``test_cfg.window_blend``)
change what a trained model predicts, and is it better?

For one trained model (a work dir) and each blend, 'uniform' (mmseg's average)
and 'gaussian' (each window weighted by a Gaussian centred on it):

- the validation split of its config: every image through the scan path
  (:func:`artseg_mm.apis.scan_inference.predict_scan`, the masks of the
  segmentor's slide inference), its confusion matrix, the split's mIoU, and for
  'gaussian' the paired difference to 'uniform' on the same images with its
  interval and p-value (:func:`artseg_mm.evaluation.paired_test`);
- a synthetic scan (:func:`benchmarks.scan.synthetic_scan`): seconds, the share
  of pixels whose class differs from the uniform mask and the mean confidence
  (the top class's probability), and ``confidence_seams.png`` in ``--out``: a
  crop of the two confidence maps side by side, where the uniform one shows the
  window borders as seams.

    python -m benchmarks.window_blend --model work_dirs/convnext_tiny_upernet_demo --out OUT
"""
import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import cli
from .table import Column, markdown_table, percent, print_report

BLENDS = ('uniform', 'gaussian')
SEAM_CROP_NAME = 'confidence_seams.png'
REPORT_NAME = 'window_blend.md'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.window_blend',
        description="uniform vs gaussian blending of a trained model's sliding windows: "
        'validation mIoU (paired test), and the mask and confidence of a synthetic scan')
    cli.add_device(parser)
    cli.add_threads(parser)
    parser.add_argument('--model', required=True, help='the trained work dir (or model '
                        'folder) whose config gives the validation split')
    parser.add_argument('--checkpoint', help="the weights (default: the work dir's best)")
    parser.add_argument('--scan-size', type=int, default=1536,
                        help='side of the synthetic scan in pixels (default 1536)')
    parser.add_argument('--window-batch', type=int,
                        help="windows per forward pass (default: the config's batch_size)")
    parser.add_argument('--max-val-images', type=int,
                        help='the first N validation images only (default: all)')
    parser.add_argument('--out', required=True,
                        help=f'folder for {REPORT_NAME} and {SEAM_CROP_NAME}')
    return parser


def with_blend(windows, blend: str):
    """A copy of the :class:`WindowModel` whose ``test_cfg.window_blend`` is ``blend``
    (the model and its config stay as loaded)."""
    return dataclasses.replace(windows, test_cfg=dict(windows.test_cfg, window_blend=blend))


def validation_images(cfg, max_images: Optional[int] = None):
    """(img_path, H x W x 3 uint8 image in the loader's order, H x W label) of each
    validation image, through the config's own val pipeline (loading and packing)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    if len(dataset) == 0:
        raise ValueError('the config\'s val_dataloader.dataset holds no images (data_root '
                         f'{cfg.val_dataloader.dataset.get("data_root")})')
    for index in range(len(dataset) if max_images is None else min(max_images, len(dataset))):
        data = dataset[index]
        sample = data['data_samples']
        image = data['inputs'].numpy().transpose(1, 2, 0)
        if image.dtype != np.uint8:
            raise ValueError(f'{sample.img_path}: the val pipeline gives {image.dtype} '
                             "pixels; the scan path takes uint8 (the loader's color_type "
                             "'color')")
        yield sample.img_path, np.ascontiguousarray(image), sample.gt_sem_seg.data[0].numpy()


def validation_confusions(windows, cfg, num_classes: int,
                          max_images: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Each blend's per-image confusion matrices (N, C, C) on the validation split,
    images in the dataset's order (both blends on each image in turn)."""
    from artseg_mm.apis.scan_inference import predict_scan
    from artseg_mm.evaluation import confusion_matrix
    confusions = {blend: [] for blend in BLENDS}
    for img_path, image, label in validation_images(cfg, max_images):
        for blend in BLENDS:
            ids = predict_scan(with_blend(windows, blend), image).ids
            try:
                confusions[blend].append(confusion_matrix(ids, label, num_classes))
            except ValueError as error:
                raise ValueError(f'{img_path}: {error}') from error
        print(f'val {len(confusions[BLENDS[0]])}: {img_path}', flush=True)
    return {blend: np.stack(confs) for blend, confs in confusions.items()}


def scan_predictions(windows, image: np.ndarray) -> Dict[str, dict]:
    """Each blend's ids and confidence of the scan, and the seconds they took."""
    from artseg_mm.apis.scan_inference import predict_scan
    results = {}
    for blend in BLENDS:
        start = time.perf_counter()
        prediction = predict_scan(with_blend(windows, blend), image, confidence=True)
        results[blend] = dict(seconds=time.perf_counter() - start, ids=prediction.ids,
                              confidence=prediction.confidence)
    return results


def seam_crop_box(shape: Tuple[int, int], crop_size, stride) -> Tuple[int, int, int, int]:
    """``(y1, y2, x1, x2)``: the top-left 3 x 3 windows' area (where windows overlap
    in both directions), within the scan."""
    return (0, min(shape[0], int(crop_size[0]) + 2 * int(stride[0])),
            0, min(shape[1], int(crop_size[1]) + 2 * int(stride[1])))


def seam_image(uniform: np.ndarray, gaussian: np.ndarray, gap: int = 8) -> np.ndarray:
    """The two confidence crops side by side on one grey scale, stretched from the
    lower of their minima (black) to 255 (white), so faint seams are visible; a
    white gap between them."""
    low = float(min(uniform.min(), gaussian.min()))
    scale = 255.0 / max(255.0 - low, 1.0)

    def stretch(confidence):
        return np.round((confidence.astype(np.float32) - low) * scale).astype(np.uint8)
    spacer = np.full((uniform.shape[0], gap), 255, dtype=np.uint8)
    return np.concatenate([stretch(uniform), spacer, stretch(gaussian)], axis=1)


@dataclass
class BlendRow:
    """One blend: the validation split's mIoU and the synthetic scan's numbers."""
    blend: str
    miou: float  # points
    miou_minus_uniform: Optional[dict]  # paired_test's, in points; None for uniform
    scan_seconds: float
    scan_changed_percent: float  # scan pixels whose class differs from uniform's mask
    scan_mean_confidence: float  # percent: the mean top-class probability


@dataclass
class BlendStudy:
    model: str
    val_images: int
    scan_size: int
    window_batch: Optional[int]
    crop_size: Tuple[int, int]
    stride: Tuple[int, int]
    seam_crop: Optional[str]  # the PNG written
    rows: List[BlendRow] = field(default_factory=list)


def paired_difference(confusions: Dict[str, np.ndarray]) -> dict:
    """gaussian's mIoU minus uniform's on the same images, in points, with its
    interval and the randomisation test's p-value."""
    from artseg_mm.evaluation import paired_test
    d = paired_test(confusions['gaussian'], confusions['uniform'])
    return dict(difference=d['difference'] * 100, low=d['low'] * 100, high=d['high'] * 100,
                p_value=d['p_value'], method=d['method'])


def measure_blends(model_source: str, out: str, checkpoint: Optional[str] = None,
                   scan_size: int = 1536, window_batch: Optional[int] = None,
                   device: str = 'cpu', max_val_images: Optional[int] = None) -> BlendStudy:
    """Both blends on the validation split and on a synthetic scan; the seam crop
    is written to ``out``."""
    import cv2

    from artseg_mm.apis import init_model, segmentor_window_model
    from artseg_mm.evaluation import mean_iou

    from .scan import synthetic_scan
    options = {} if window_batch is None else {'model.test_cfg.batch_size': window_batch}
    model = init_model(model_source, checkpoint, device=device, cfg_options=options)
    if (model.test_cfg or {}).get('mode', 'whole') != 'slide':
        raise ValueError(f"{model_source}: test_cfg.mode is {model.test_cfg.get('mode')!r}; "
                         "window blending applies to 'slide' mode only")
    windows = segmentor_window_model(model)
    num_classes = len(model.dataset_meta['classes'])
    with torch.inference_mode():
        confusions = validation_confusions(windows, model.cfg, num_classes, max_val_images)
        scan = scan_predictions(windows, synthetic_scan(scan_size))
    crop, stride = tuple(model.test_cfg['crop_size']), tuple(model.test_cfg['stride'])
    y1, y2, x1, x2 = seam_crop_box((scan_size, scan_size), crop, stride)
    os.makedirs(out, exist_ok=True)
    seam_path = os.path.join(out, SEAM_CROP_NAME)
    if not cv2.imwrite(seam_path, seam_image(scan['uniform']['confidence'][y1:y2, x1:x2],
                                             scan['gaussian']['confidence'][y1:y2, x1:x2])):
        raise OSError(f'{seam_path}: cv2.imwrite could not write it')
    study = BlendStudy(model_source, len(confusions['uniform']), scan_size, window_batch,
                       crop, stride, seam_path)
    difference = paired_difference(confusions)
    for blend in BLENDS:
        study.rows.append(BlendRow(
            blend, float(mean_iou(confusions[blend].sum(axis=0))) * 100,
            difference if blend == 'gaussian' else None, scan[blend]['seconds'],
            float((scan[blend]['ids'] != scan['uniform']['ids']).mean()) * 100,
            float(scan[blend]['confidence'].mean()) / 255 * 100))
    return study


def _difference(d: Optional[dict]) -> Optional[str]:
    if d is None:
        return None
    return (f'{d["difference"]:+.2f} [{d["low"]:+.2f}, {d["high"]:+.2f}], '
            f'p = {d["p_value"]:.3g}')


COLUMNS = [
    Column('blend', 'blend'), Column('val mIoU', 'miou', '.2f'),
    Column('val mIoU minus uniform, paired [95% CI], p', lambda r: _difference(
        r.miou_minus_uniform)),
    Column('scan time (s)', 'scan_seconds', '.1f'),
    Column('scan pixels changed vs uniform', 'scan_changed_percent', percent('.3f')),
    Column('scan mean confidence', 'scan_mean_confidence', percent('.2f'))]


def report_lines(study: BlendStudy) -> List[str]:
    method = next((r.miou_minus_uniform['method'] for r in study.rows
                   if r.miou_minus_uniform), '')
    return [f'window blending of model {study.model}: {study.val_images} validation images '
            f'and a {study.scan_size}x{study.scan_size} synthetic scan, windows '
            f'{study.crop_size} at stride {study.stride}, window batch '
            f'{study.window_batch or "config"}', '',
            *markdown_table(study.rows, COLUMNS), '',
            f'paired difference: {method}',
            f'confidence crops (uniform left, gaussian right, one grey scale stretched to '
            f'the lower minimum): {study.seam_crop}']


def main(argv: Optional[List[str]] = None) -> BlendStudy:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    settings = build_parser().parse_args(argv)
    device = cli.start(settings)
    lines = cli.header_lines(settings, device)
    print('\n'.join(lines), flush=True)
    study = measure_blends(settings.model, settings.out, settings.checkpoint,
                           settings.scan_size, settings.window_batch, str(device),
                           settings.max_val_images)
    print_report([*lines, '', *report_lines(study)], cli.command('window_blend', argv),
                 os.path.join(settings.out, REPORT_NAME))
    return study


if __name__ == '__main__':
    main()
