"""Package a trained model as a folder to hand on or push to the Hugging Face hub.

    python tools/misc/package_model.py WORK_DIR --out DIR [--checkpoint CKPT]
        [--metrics METRICS_DIR] [--force]

DIR gets config.json (the config as data, pretrained-weight settings cleared), model.safetensors,
classes.json, data_summary.json, the test tables of ``tools/test.py --work-dir``
(default WORK_DIR/test; their absence is said in the card), a model card
README.md and the manifest artseg_model.json. ``init_model(DIR)`` and
``tools/infer.py ... --model DIR`` load it. See artseg_mm.apis.model_package.
"""
import argparse
import sys

from artseg_mm.apis.model_package import package_model
from artseg_mm.checkpoints.matching import CheckpointMismatchError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Package a trained model as a shareable '
                                     'folder')
    parser.add_argument('work_dir', help='the training run\'s work dir')
    parser.add_argument('--out', required=True, help='the model folder to write')
    parser.add_argument('--checkpoint', help='weights (default: the work dir\'s best, '
                        'else last)')
    parser.add_argument('--metrics', help='folder of the tools/test.py tables, its '
                        '--work-dir (default: WORK_DIR/test)')
    parser.add_argument('--force', action='store_true',
                        help='replace DIR if it is a model folder this tool wrote')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        manifest = package_model(args.work_dir, args.out, checkpoint=args.checkpoint,
                                 metrics_dir=args.metrics, force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError, CheckpointMismatchError) as error:
        print(f'package_model: {error}', file=sys.stderr)
        return 1
    print(f'package_model: {args.out}: ' + ', '.join(manifest['files']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
