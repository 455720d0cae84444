"""Browse the training data as the model sees it: mmseg's ``browse_dataset.py``,
same flags, working with OpenCV 5; one picture per sample (augmented image |
ground truth) in ``--output-dir``.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR --not-show
"""
import argparse

import artseg_mm  # noqa: F401  (registers modules, installs compat)
from artseg_mm.cli import add_cfg_options, config_with_options
from artseg_mm.visualization.dataset_browser import browse_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--output-dir', default=None, type=str,
                        help='If there is no display interface, you can save it')
    parser.add_argument('--not-show', default=False, action='store_true')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='the interval of show (s)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    count = browse_dataset(config_with_options(args.config, args.cfg_options),
                           args.output_dir, show=not args.not_show,
                           wait_time=args.show_interval)
    where = f' -> {args.output_dir}' if args.output_dir else ''
    print(f'browse_dataset: {count} samples{where}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
