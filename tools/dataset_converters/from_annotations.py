"""Import masks corrected in an annotation tool as a data root to fine-tune on.

    python tools/dataset_converters/from_annotations.py FORMAT ANNOTATIONS \\
        --images IMAGE_DIR --out DATA_ROOT [--classes MODEL_OR_JSON]
        [--val-fraction 0.2 | --val NAME [NAME ...]] [--seed 0]
        [--overlap error|later] [--skip-unannotated] [--use-predictions] [--force]

FORMAT is ``cvat`` (a "Segmentation mask 1.1" export: its zip or unpacked folder),
``coco`` (a COCO JSON) or ``label-studio`` (a Label Studio JSON export). Examples::

    python tools/dataset_converters/from_annotations.py cvat task_12.zip \\
        --images scans/ --out data/corrected --classes work_dirs/unet_artefact
    python tools/dataset_converters/from_annotations.py label-studio export.json \\
        --images scans/ --out data/corrected --classes '["Clean", "Damage"]'

Images: every image file under IMAGE_DIR, its subfolders included, known by its path
relative to IMAGE_DIR ('box_2/page.png'). An annotation names its image by a path (CVAT:
the mask's path under SegmentationClass/ without .png, 'box_2/page'; COCO: file_name;
Label Studio: the path of data.image's URL): the image is IMAGE_DIR/<that path>; when
there is none, the path's leading folders (the tool's own: an absolute path, an upload
folder) are dropped one at a time, and at each step an image of the same path with
another image suffix stands in when it is the only one. So the collection
``tools/infer.py --export`` writes for a folder with subfolders imports with
``--images`` the folder it segmented. The sample id is the image's relative path without
its suffix, and the data root mirrors the subfolders (img_dir/train/box_2/page.png).

DATA_ROOT gets the layout ``ARTeFACTDataset`` reads (img_dir/ann_dir/{train,val},
meta/, meta.json, summary.json, class_weights*.json). Exit status: 0 written, 1 the
annotations cannot become masks (the message names the image, label or file), 2 a usage
mistake. The importer is ``artseg_mm.interchange.imports``.
"""
import argparse
import sys

from artseg_mm.interchange.imports import (DEFAULT_VAL_FRACTION, FORMATS, OVERLAP_RULES,
                                           AnnotationImportError, ImportUsageError,
                                           import_annotations)

PROG = 'from_annotations'


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f'{PROG}: {message}\n')


def parse_args(argv=None):
    parser = OneLineParser(
        prog=PROG, description='Import corrected masks from CVAT, COCO or Label Studio as a '
        'data root (img_dir/ann_dir/{train,val}, meta.json, class weights)')
    parser.add_argument('format', choices=FORMATS, help='the export format')
    parser.add_argument('annotations', help='the export: a CVAT zip or folder, a COCO or '
                        'Label Studio JSON')
    parser.add_argument('--images', required=True,
                        help='folder of the annotated images, subfolders included; an '
                        'annotation names its image by its path relative to this folder')
    parser.add_argument('--out', required=True, help='the data root to write')
    parser.add_argument('--classes', default=None,
                        help='the model the masks are for: a work dir, model folder or '
                        'config, or a JSON list of class names (default: ["Clean", '
                        '"Damage"]); labels match its class names ignoring case')
    split = parser.add_mutually_exclusive_group()
    split.add_argument('--val-fraction', type=float, default=DEFAULT_VAL_FRACTION,
                       help='share of the images drawn for validation (default: '
                       '%(default)s; at least one image in each split from two images on)')
    split.add_argument('--val', nargs='+', metavar='NAME', default=None,
                       help='the validation images, by sample id (path relative to '
                       '--images without suffix, e.g. box_2/page) or path with suffix')
    parser.add_argument('--seed', type=int, default=0, help='seed of the drawn split')
    parser.add_argument('--overlap', choices=OVERLAP_RULES, default='error',
                        help='pixels two classes claim: an error (default), or the '
                        'annotation listed later in the file wins')
    parser.add_argument('--skip-unannotated', action='store_true',
                        help='leave out (and list) images that have no annotation instead '
                        'of failing')
    parser.add_argument('--use-predictions', action='store_true',
                        help='Label Studio: use a task\'s prediction where it has no '
                        'annotation')
    parser.add_argument('--force', action='store_true',
                        help='replace DATA_ROOT if this tool wrote it')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def print_summary(summary: dict, out: str) -> None:
    """What was written: images per split, class shares of train, left-out images."""
    print(f'{PROG}: {out} written (masks: {summary["label_mode_on_disk"]} class ids); '
          'images per split: ' + ', '.join(f'{s} {n}' for s, n in
                                           summary['images_per_split'].items()))
    print('class pixel frequency (train):')
    frequency = summary['class_frequency']['train']
    for name in summary['model_classes']:  # the model's, not every class of the label set
        print(f'  {name:<16} {frequency[name]:.6f}')
    if not summary['images_per_split']['val']:
        print('no validation image: one image was imported, and it is for training')
    left_out = summary['left_out_unannotated']
    if left_out:
        print(f'left out {len(left_out)} image(s) without annotation: {", ".join(left_out)}')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = import_annotations(
            args.format, args.annotations, args.images, args.out, classes=args.classes,
            val_fraction=args.val_fraction, val=args.val, seed=args.seed,
            overlap=args.overlap, skip_unannotated=args.skip_unannotated,
            use_predictions=args.use_predictions, force=args.force,
            progress=not args.no_progress)
    except ImportUsageError as error:
        print(f'{PROG}: {error}', file=sys.stderr)
        return 2
    except AnnotationImportError as error:
        print(f'{PROG}: {error}', file=sys.stderr)
        return 1
    print_summary(summary, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
