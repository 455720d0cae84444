"""Attention maps of a Swin or CoaT segmentor at one query location.

* Swin: the window attention of the query pixel in block ``--block`` of stage
  ``--stage`` (0-based, timm's ``layers_<stage>``), per head and/or averaged,
  placed back on the image (shifted windows and padding handled; the cyan
  outline is the query's window). Stage 2 is the default: it is the deepest
  stage whose blocks alternate shifted windows at any input size (a Swin built
  for 224 px has a 7x7 grid in stage 3, so its stage-3 windows never shift).
* CoaT: its factorized attention has no token-by-token matrix (see
  ``artseg_mm.explanation.attention.coat_factor_attention``). Three figures: the
  per-head distribution softmax-over-tokens of the keys (query-independent),
  the query's implied (unnormalised, signed) weights on each token, and the
  magnitude of the convolutional relative-position term.
* ConvNeXt / ResNet: no attention; the tool says so and exits with status 3.

A model evaluated by sliding windows (or CoaT, built for one size) sees one
window of a large image at a time: such an image is analysed in the window of
that size centred on the query (``--whole``: the whole image in one pass).

Writes PNG grids to ``--out``: ``<image>_<model>_s<stage>b<block>_<what>.png``.

Example::

    python tools/analysis_tools/visualize_attention.py \
        configs/swin_tiny_upernet_artefact.py work_dirs/swin/best.pth \
        data/artefact/img_dir/val/0001.png --out work_dirs/attention \
        --stage 2 --block -1 --query 256 200 --heads all --device cpu
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from artseg_mm.cli import add_cfg_options

EXIT_NO_ATTENTION = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', default='work_dirs/attention', help='output directory')
    parser.add_argument('--stage', type=int, default=2,
                        help='0-based stage (timm layers_<stage> / CoaT serial_blocks<stage+1>)')
    parser.add_argument('--block', type=int, default=-1,
                        help='block index in the stage, negative counts from the end')
    parser.add_argument('--query', type=float, nargs=2, metavar=('X', 'Y'), default=None,
                        help='query pixel on the original image (default: its centre)')
    parser.add_argument('--heads', choices=('all', 'mean'), default='all',
                        help='one panel per head plus the mean, or the mean only')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--whole', action='store_true',
                        help='run the whole image in one pass; default: an image larger '
                        'than the model\'s slide window (or CoaT\'s fixed size) is '
                        'analysed in the window of that size centred on the query')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def _window_outline(result, attention, img_shape, ori_shape):
    """Image-size boolean mask of the query's window (real key cells)."""
    cells = np.zeros((1,) + tuple(result.grid_hw), dtype=np.float32)
    real = result.key_cells[:, 0] >= 0
    cells[0, result.key_cells[real, 0], result.key_cells[real, 1]] = 1
    return attention.grid_to_image(cells, result.stride, img_shape, ori_shape)[0] > 0.5


def _panels(maps, mean_title, head_title, heads_mode, extra=None):
    """Mean panel first, then per-head panels when --heads all."""
    mean = maps.mean(axis=0)  # heads share the NaN cells (outside the window)
    out, titles = [mean], [mean_title]
    if heads_mode == 'all':
        for i, m in enumerate(maps):
            out.append(m)
            titles.append(head_title(i))
    return out, titles


def main(argv=None) -> int:
    args = parse_args(argv)
    import artseg_mm  # noqa: F401  before mmseg.models
    from artseg_mm.explanation import attention
    from artseg_mm.explanation.cam import AnalysisInputError, load_segmentor, prepare_image

    from artseg_mm.checkpoints.matching import CheckpointMismatchError
    user_errors = (FileNotFoundError, CheckpointMismatchError, AnalysisInputError)

    try:
        model = load_segmentor(args.config, args.checkpoint, args.device, args.cfg_options)
        kind, blocks = attention.find_attention_blocks(model.backbone)
    except attention.NoAttentionError as exc:
        print(f'{args.config}: {exc}', file=sys.stderr)
        return EXIT_NO_ATTENTION
    except user_errors as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    try:
        block_name = attention.select_block(blocks, args.stage, args.block)
        image = prepare_image(model, args.image, args.query, args.whole)
    except user_errors as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    full_h, full_w = image.full_shape
    query = tuple(args.query) if args.query else ((full_w - 1) / 2, (full_h - 1) / 2)
    if not (0 <= query[0] < full_w and 0 <= query[1] < full_h):
        print(f'error: --query {query[0]:g} {query[1]:g} lies outside the image '
              f'({full_w}x{full_h}, width x height)', file=sys.stderr)
        return 2
    ori_h, ori_w = image.rgb.shape[:2]  # the analysed region of the original image
    x0, y0, x1, y1 = image.region
    query_in = image.to_input_xy(query)
    query_shown = (query[0] - x0, query[1] - y0)
    block_index = args.block % len(blocks[args.stage])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f'{Path(args.image).stem}_{Path(args.config).stem}_s{args.stage}b{block_index}'
    to_img = lambda maps, stride: attention.grid_to_image(  # noqa: E731
        maps, stride, image.img_shape, (ori_h, ori_w))
    where = f'{block_name} | query ({query[0]:.0f}, {query[1]:.0f})' + (
        f' | window x {x0}..{x1}, y {y0}..{y1} of {full_w}x{full_h}'
        if image.cropped else '')
    written = []

    if kind == 'swin':
        res = attention.swin_window_attention(model.backbone, block_name, image.inputs,
                                              query_in)
        maps = to_img(res.maps, res.stride)
        panels, titles = _panels(
            maps, f'mean of {len(maps)} heads (pad {res.padding_mass.mean():.2f})',
            lambda i: f'head {i} (pad {res.padding_mass[i]:.2f})', args.heads)
        shifted = 'shifted' if any(res.shift_size) else 'not shifted'
        path = out_dir / f'{stem}_swin_window_attention.png'
        attention.save_map_grid(
            path, image.rgb, panels, titles, query_shown,
            f'Swin window attention of the query | {where}\nwindow {res.window_size}, '
            f'{shifted} (shift {res.shift_size}), grid {res.grid_hw}, stride {res.stride}'
            f' | "pad": weight on padding tokens',
            outline=_window_outline(res, attention, image.img_shape, (ori_h, ori_w)))
        written.append(path)
    else:
        res = attention.coat_factor_attention(model.backbone, block_name, image.inputs,
                                              query_in)
        figures = [
            ('keys', res.key_softmax, 'inferno', False, False,
             'softmax over tokens of the keys, mean over each head\'s channels '
             '(query-independent: what the global summary is drawn from; '
             'colours span each panel\'s min..max)',
             lambda i: f'head {i} (cls {res.key_softmax_cls[i]:.3f}, '
                       f'pad {res.padding_mass[i]:.3f})'),
            ('query_weights', res.query_weights, 'RdBu_r', True, False,
             'implied weights of the query on each token, scale*q.softmax(K) '
             '(unnormalised, signed; local conv term excluded)',
             lambda i: f'head {i} (cls {res.query_weights_cls[i]:+.2g})'),
            ('crpe', res.crpe_magnitude, 'viridis', False, True,
             '|conv. relative position term| per token (local; compare: '
             f'mean |factor term| {res.factor_magnitude.mean():.3g})',
             lambda i: f'head {i}'),
        ]
        for name, maps, cmap, symmetric, from_zero, what, head_title in figures:
            up = to_img(maps, res.stride)
            panels, titles = _panels(up, f'mean of {len(up)} heads', head_title,
                                     args.heads)
            path = out_dir / f'{stem}_coat_{name}.png'
            attention.save_map_grid(path, image.rgb, panels, titles, query_shown,
                                    f'CoaT factorized attention | {where}\n{what}',
                                    cmap=cmap, symmetric=symmetric, from_zero=from_zero)
            written.append(path)
    for path in written:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
