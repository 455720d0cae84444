"""Grad-CAM of a segmentor's class on one or more images (grad-cam 1.5, CPU/CUDA).

Replaces mmseg's upstream tool of the same name, which passes ``use_cuda`` to
``GradCAM`` (rejected by grad-cam 1.5) and has no reshape transform for
transformer features. Per image it writes, in ``--out``:

* ``<image>_<config>_cam.png``: image + CAM heatmap + white contour of the predicted
  mask of the class, at the image's own size (or the analysed window's: a
  model evaluated by sliding windows, or a fixed-size CoaT, sees one window of
  a larger image at a time; see ``--center`` / ``--whole``);
* ``<image>_<config>_cam_figure.png``: the image and the overlay side by side, with a
  colorbar and a title (model, class, layers);
* ``<image>_<config>_cam.npy`` with ``--save-npy``: the CAM (float32, [0, 1], image size).

Example::

    python tools/analysis_tools/visualization_cam.py \
        configs/swin_tiny_upernet_artefact.py work_dirs/swin/best.pth \
        data/artefact/img_dir/val/0001.png --out work_dirs/cam --device cpu
    # any layer: --target-layers backbone.model.layers_2  (or `head`)
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from artseg_mm.cli import add_cfg_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+', help='image file(s)')
    parser.add_argument('--out', default='work_dirs/cam', help='output directory')
    parser.add_argument(
        '--target-layers', nargs='+', default=None,
        help='dotted layer name(s) in the segmentor, e.g. backbone.model.stages_3 '
        'or backbone.model.stages.2; `head` = the decode head\'s fused feature. '
        'Default: the last backbone stage')
    parser.add_argument(
        '--category', default=None,
        help='class name or index; default: the damage class (binary models), '
        'else the largest predicted non-Clean class')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument(
        '--center', type=float, nargs=2, metavar=('X', 'Y'), default=None,
        help='a model run by sliding windows (or built for one size, CoaT) sees one '
        'window at a time: an image larger than that window is analysed in the window '
        'centred here (original-image pixels; default: the image centre)')
    parser.add_argument('--whole', action='store_true',
                        help='analyse the whole image in one pass instead of one window')
    parser.add_argument('--save-npy', action='store_true', help='also write the CAM as .npy')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import artseg_mm  # noqa: F401  before mmseg.models
    from PIL import Image

    from artseg_mm.explanation.cam import (AnalysisInputError, LayerNotFoundError,
                                        cam_overlay, compute_gradcam, load_segmentor,
                                        prepare_image, resize_to, save_cam_figure)

    from artseg_mm.checkpoints.matching import CheckpointMismatchError
    user_errors = (FileNotFoundError, CheckpointMismatchError, AnalysisInputError,
                   LayerNotFoundError)
    try:
        model = load_segmentor(args.config, args.checkpoint, args.device, args.cfg_options)
    except user_errors as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_name = Path(args.config).stem
    for img_path in args.images:
        try:
            image = prepare_image(model, img_path, args.center, args.whole)
            result = compute_gradcam(model, image.inputs, args.target_layers,
                                     args.category, image.img_shape)
        except user_errors as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
        for note in result.notes:
            print(f'{img_path}: note: {note}')
        ori_hw = image.rgb.shape[:2]
        cam = resize_to(result.cam, ori_hw)
        mask = resize_to((result.pred == result.category).astype(np.uint8), ori_hw,
                         nearest=True)
        stem = f'{Path(img_path).stem}_{model_name}'  # several models share a --out
        overlay_path = out_dir / f'{stem}_cam.png'
        Image.fromarray(cam_overlay(image.rgb, cam, mask)).save(overlay_path)
        x0, y0, x1, y1 = image.region
        where = (f' | window x {x0}..{x1}, y {y0}..{y1} of {image.full_shape[1]}x'
                 f'{image.full_shape[0]}' if image.cropped else '')
        title = (f'{model_name} | class {result.category_name!r} (#{result.category})'
                 f'{where}'
                 f'{" [not predicted: whole-image target]" if result.whole_image_target else ""}'
                 f'\nlayers: {", ".join(result.target_layers)}')
        save_cam_figure(out_dir / f'{stem}_cam_figure.png', image.rgb, cam, mask, title)
        if args.save_npy:
            np.save(out_dir / f'{stem}_cam.npy', cam.astype(np.float32))
        print(f'{img_path}{where}: class {result.category_name!r} at '
              f'{", ".join(result.target_layers)} -> {overlay_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
