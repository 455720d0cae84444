"""Export a trained model to ONNX, TorchScript or torch.export, then check it.

    python tools/deployment/export.py MODEL --format onnx --out model.onnx [--checkpoint CKPT]

MODEL is a work dir (its config and best checkpoint, else the last) or a config
(with --checkpoint; without one, untrained weights). The file holds the
whole-image model, normalised images -> logits at the input size, in float32,
with the config, classes and palette embedded (tools/infer.py --model
model.onnx uses them). Height and width are dynamic where the encoder allows
it, else fixed at the config's window (CoaT).

After writing, the file is run (onnxruntime, torch.jit.load, torch.export.load)
on windows of an image (--image, default the first test image of the config,
else a synthetic one) next to the PyTorch model; the largest logit difference
and the share of pixels whose class differs are printed. Exit status 1 when
that share exceeds --max-changed percent (default 0.1) or logits are not finite.
"""
import argparse
import os.path as osp
import sys

from artseg_mm.apis import init_model
from artseg_mm.deployment import (FORMATS, INPUT_SIZES, MAX_CHANGED_PERCENT,
                                  ExportedSegmentor, compare_exported, export_model,
                                  load_check_image)
from artseg_mm.cli import add_cfg_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a model and check the file')
    parser.add_argument('model', metavar='CONFIG_OR_WORKDIR', help='work dir or config file')
    parser.add_argument('--checkpoint', help="checkpoint (default: the work dir's best)")
    parser.add_argument('--format', required=True, choices=sorted(FORMATS),
                        help='onnx (.onnx), torchscript (.pt) or exported (torch.export, .pt2)')
    parser.add_argument('--out', required=True, help='the file to write')
    parser.add_argument('--input-size', default='auto', choices=INPUT_SIZES,
                        help='dynamic height and width, or fixed at the config\'s window '
                        '(auto: dynamic where the encoder allows it)')
    parser.add_argument('--image', help='image to check the file on (default: the first '
                        'test image of the config, else a synthetic one)')
    parser.add_argument('--max-changed', type=float, default=MAX_CHANGED_PERCENT,
                        help='largest share of pixels, in percent, whose class may differ '
                        'from PyTorch (default %(default)s)')
    parser.add_argument('--force', action='store_true', help='replace an existing file')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.force:
        raise SystemExit(f'export: {args.out} exists; use --force to replace it')
    model = init_model(args.model, args.checkpoint, device='cpu', cfg_options=args.cfg_options,
                       optimize=False)  # the export makes its own float32 copy
    try:
        info = export_model(model, args.format, args.out, args.input_size)
    except ValueError as error:
        raise SystemExit(f'export: {error}') from error
    size = ('dynamic height and width' if info.fixed_size is None
            else f'fixed {info.fixed_size[0]}x{info.fixed_size[1]} inputs')
    print(f'export: wrote {info.path} ({args.format}, {size}, any batch; traced at '
          f'{info.example_size[0]}x{info.example_size[1]})')

    image, source = load_check_image(model.cfg, args.image)
    result = compare_exported(model, ExportedSegmentor(info.path), image)
    shapes = ', '.join(f'{n}x3x{h}x{w}' for n, h, w in result.shapes)
    print(f'check on {source} (inputs {shapes}): max |logit difference| '
          f'{result.max_abs_diff:.3g} (largest |logit| {result.max_abs_logit:.3g}); '
          f'class differs at {result.changed_pixels} of {result.pixels} pixels '
          f'({result.changed_percent:.4f}%)')
    if not result.passed(args.max_changed):
        problem = ('non-finite logits' if not result.finite else
                   f'{result.changed_percent:.4f}% of pixels change class, more than '
                   f'--max-changed {args.max_changed}%')
        print(f'export: check FAILED: {problem}', file=sys.stderr)
        return 1
    print(f'export: check passed (at most {args.max_changed}% of pixels may change class)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
