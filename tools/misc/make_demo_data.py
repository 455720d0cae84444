"""Write the demo dataset: painted heritage-like images with rendered damage and exact masks.

    python tools/misc/make_demo_data.py                      # data/artefact_demo, 40 train / 10 val
    python tools/misc/make_demo_data.py --out DIR --num-images 6 --val 2 --size 64 --force

Same seed and settings give byte-identical files. An existing non-empty --out is replaced only
with --force (a folder that already holds exactly these files is left alone).
"""
import argparse
import sys

from artseg_mm.data_prep.demo_generator import generate_demo_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/artefact_demo', help='output folder')
    parser.add_argument('--num-images', type=int, default=50, help='images in all splits')
    parser.add_argument('--val', type=int, default=10, help='images in the val split')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--size', type=int, default=256, help='image side in pixels')
    parser.add_argument('--force', action='store_true',
                        help='replace --out if it exists and is not empty')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = generate_demo_dataset(args.out, num_images=args.num_images, num_val=args.val,
                                       seed=args.seed, size=args.size, force=args.force,
                                       progress=not args.no_progress)
    except (FileExistsError, ValueError) as err:
        print(f'make_demo_data: {err}', file=sys.stderr)
        return 2
    if result == 'up to date':
        print(f'{args.out} already holds the demo data for these settings; nothing to do '
              f'(pass --force to rewrite it)')
    else:
        print(f'wrote {args.num_images - args.val} train and {args.val} val images to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
