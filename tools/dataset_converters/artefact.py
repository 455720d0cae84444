"""Convert ARTeFACT (Hugging Face ``danielaivanova/damaged-media``) to the
mmseg layout read by ``ARTeFACTDataset``.

Examples::

    huggingface-cli download --repo-type dataset \\
        danielaivanova/damaged-media --local-dir data/raw/damaged-media
    python tools/dataset_converters/artefact.py data/raw/damaged-media
    # a 50-image demo subset: 40 train / 10 val
    python tools/dataset_converters/artefact.py data/raw/damaged-media \\
        --num-samples 50 --val 10 --out data/artefact_50
    # full resolution cut into 1024 px tiles
    python tools/dataset_converters/artefact.py data/raw/damaged-media \\
        --tile 1024 --tile-overlap 128 --out data/artefact_tiles

The converter lives in ``artseg_mm/data_prep/`` (``converter.py`` drives it).
"""
import argparse
import sys

from artseg_mm.data_prep.converter import (DEFAULT_MAX_PIXELS, DEFAULT_OUT_DIR,
                                           DEFAULT_RESIZE_LONG_SIDE, LABEL_MODES,
                                           convert_artefact)
from artseg_mm.data_prep.errors import ConversionError
from artseg_mm.data_prep.parquet_source import DEFAULT_DOWNLOAD_DIR, HUB_REPO_ID
from artseg_mm.data_prep.splits import parse_amount


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the ARTeFACT parquet release to the mmseg '
        'layout (img_dir/ann_dir/{train,val,test}, meta/, meta.json, '
        'summary.json, class_weights.json)')
    parser.add_argument(
        'source',
        help=f'folder of parquet shards (searched recursively), one shard, '
        f'or a hub dataset name such as {HUB_REPO_ID} (needs '
        f'huggingface_hub and network)')
    parser.add_argument('-o', '--out', default=DEFAULT_OUT_DIR,
                        help='output folder (default: %(default)s)')
    parser.add_argument(
        '--label-mode', choices=LABEL_MODES, default='full',
        help='full: class ids 0..15 and 255 on disk (default, recommended; '
        'the dataset maps to binary itself); binary: 0 clean / 1 damage / '
        '255')
    parser.add_argument(
        '--resize-long-side', type=int, default=None,
        help=f'shrink images whose long side exceeds this (image INTER_AREA, '
        f'mask nearest); 0 keeps the source size (default: '
        f'{DEFAULT_RESIZE_LONG_SIDE}, or 0 with --tile)')
    parser.add_argument('--tile', type=int, default=None,
                        help='cut images into tiles of this size '
                        '(ids <id>_x<tx>_y<ty>)')
    parser.add_argument('--tile-overlap', type=int, default=0,
                        help='pixels shared by neighbouring tiles')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the material-stratified split')
    parser.add_argument('--num-samples', type=int, default=None,
                        help='draw this many images (stratified by '
                        'material) before splitting')
    parser.add_argument('--val', type=parse_amount, default=None,
                        help='validation fraction (< 1) or count '
                        '(default: 0.15)')
    parser.add_argument('--test', type=parse_amount, default=None,
                        help='test fraction (< 1) or count (default: 0.15, '
                        'or 0 with --num-samples)')
    parser.add_argument('--split-file', default=None,
                        help='JSON ({id: split} or {split: [ids]}) or CSV '
                        '(id,split) fixing the split; ids not listed are '
                        'not converted')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip unusable rows (listed in the summary) '
                        'instead of stopping at the first')
    parser.add_argument('--force', action='store_true',
                        help='replace a non-empty output folder')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help='refuse images larger than this many pixels '
                        '(default: %(default)s; the largest published '
                        'image has 133 Mpx)')
    parser.add_argument('--download-dir', default=DEFAULT_DOWNLOAD_DIR,
                        help='where a hub dataset is downloaded '
                        '(default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        convert_artefact(
            args.source, args.out, label_mode=args.label_mode,
            resize_long_side=args.resize_long_side, tile=args.tile,
            tile_overlap=args.tile_overlap, seed=args.seed,
            num_samples=args.num_samples, val=args.val, test=args.test,
            split_file=args.split_file, skip_bad=args.skip_bad,
            force=args.force, max_pixels=args.max_pixels,
            download_dir=args.download_dir, progress=not args.no_progress)
    except ConversionError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
