"""FLOPs and parameters of a segmentor: mmseg's ``get_flops.py``, same flags.

mmseg's own tool traces the model with torch.jit, to which the NNPACK path of our
3x3 convolutions is an opaque op: it leaves them out of the count, and it builds
the model with its pretrained weights (fetched from the hub). This one counts
with mmengine's counter as the comparison does (one multiply-add = one FLOP, the
convention mmseg's tool prints), those convolutions included, on the config's
model without the auxiliary head and without pretrained weights.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]] [--cfg-options ...]
"""
import argparse

import artseg_mm  # noqa: F401  (registers modules, the weights-only checkpoint loader)
from artseg_mm.study.flops import FLOP_CONVENTION, segmentor_complexity
from artseg_mm.cli import add_cfg_options, config_with_options


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Get the FLOPs of a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[2048, 1024],
                        help='input image size')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit(f'--shape takes H or H W, got {args.shape}')
    shape = (args.shape[0], args.shape[-1])
    result = segmentor_complexity(config_with_options(args.config, args.cfg_options), shape)
    line = '=' * 30
    print(f'{line}\nCompute type: direct: randomly generate a picture\n'
          f'Input shape: {shape}\nFlops: {result["gflops"]:.3f}G ({FLOP_CONVENTION})\n'
          f'Params: {result["params_m"]:.3f}M\n{line}')
    if result['note']:
        print(f'Note: {result["note"]}')
    print('!!!Please be cautious if you use the results in papers. '
          'You may need to check if all ops are supported and verify '
          'that the flops computation is correct.')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
