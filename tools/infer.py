"""Segment your own scans with a trained model.

    python tools/infer.py INPUT [INPUT ...] --model MODEL --out DIR [--checkpoint CKPT]

INPUT is an image file, a folder (its PNG, JPEG and TIFF files; with --recursive
those of its subfolders too, the tree mirrored in every output folder) or a quoted glob;
MODEL a work dir (its config and best checkpoint, else the last), a model folder
(written by tools/misc/package_model.py), a config (with --checkpoint; without one it
is refused unless --random-weights asks for untrained weights) or a model exported by
tools/deployment/export.py (.onnx, run by onnxruntime; it carries its config, classes
and palette). Images are read by the config's own loader, as in training (8/16-bit,
grey/RGB/RGBA, EXIF orientation), after their header is checked against --max-pixels
(default 250 Mpx: a small file can declare a huge image). Sliding-window inference
with bounded memory: any scan size.
Writes class-id and colour masks, confidence maps, overlays, a printable page per
image (areas in mm^2 where the file declares its resolution or --dpi gives it,
regions, lengths of thin damage, unsure regions to review first), zoomable views of
large scans, DIR/summary.csv and .json, DIR/index.html, the provenance of it all
(model, training data, limitations, options, versions, date) and the per-image
records that let --resume continue a run that stopped (see
artseg_mm.visualization.scan_report). One run at a time per DIR.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import warnings

import cv2
import numpy as np
from tqdm import tqdm

from artseg_mm.apis import ScanInferencer
from artseg_mm.apis.confidence_review import DEFAULT_THRESHOLD, low_confidence_review
from artseg_mm.apis.inferencer import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from artseg_mm.apis.measurements import DEFAULT_MIN_REGION_PX, measurement_record
from artseg_mm.utils.hashing import sha256_of
from artseg_mm.apis.provenance import model_provenance, tool_provenance, utc_now
from artseg_mm.datasets.image_header import IMAGE_WARNINGS
from artseg_mm.interchange.collection import CollectionExport
from artseg_mm.interchange.exports import FORMATS
from artseg_mm.datasets.image_resolution import (read_resolution, resolution_from_dpi,
                                                 resolution_from_px_per_mm, swap_axes)
from artseg_mm.datasets.orientation import (TURNED_ORIENTATIONS, ExifOrientationWarning,
                                            file_orientation, to_display_orientation)
from artseg_mm.deployment import is_exported_model
from artseg_mm.engine import cpu_supports_bf16
from artseg_mm.cli import add_cfg_options
from artseg_mm.utils.memory import peak_rss_mib, rss_mib
from artseg_mm.visualization.scan_report import (RUN_FILE, OutputLock, ScanReport,
                                                 check_output_dir, check_resumable,
                                                 make_output_dirs, prepare_output_dir,
                                                 write_json_atomic)

WINDOW_BAR_FROM = 16  # show a progress bar over windows from this many on
EXPORTS = 'exports'  # folder of --export's files in OUT
ZOOM_FROM = 2048  # longest side from which a scan gets a zoomable view (overlays: 1024)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment damage in your own scans')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image files, folders or globs (PNG, JPEG, TIFF)')
    parser.add_argument('--model', required=True,
                        help='work dir, model folder, config file or exported model '
                        '(.onnx)')
    parser.add_argument('--checkpoint', help='checkpoint (default: the work dir\'s best)')
    parser.add_argument('--random-weights', action='store_true',
                        help='with a config and no --checkpoint: segment with untrained '
                        'random weights (only to try the tool; refused otherwise)')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help='refuse images whose header declares more pixels, before '
                        f'decoding them (default {DEFAULT_MAX_PIXELS:,})')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--force', action='store_true',
                        help='replace the results in a non-empty output folder')
    parser.add_argument('--resume', action='store_true',
                        help='continue a run that stopped (killed, crashed) into the same '
                        '--out: files already done are kept, the rest segmented; refused if '
                        'the model, options or inputs differ')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip unreadable inputs (listed in the summary) instead of '
                        'stopping')
    parser.add_argument('--window-batch', type=int,
                        help='windows per forward pass (model.test_cfg.batch_size)')
    parser.add_argument('--bf16', action='store_true',
                        help='bfloat16 autocast (model.test_cfg.autocast_dtype); fast on '
                        'CPUs with bf16 kernels, changes a small share of pixels')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda[:N]'")
    parser.add_argument('--recursive', action='store_true',
                        help='search folders\' subfolders too; the tree is mirrored under '
                        'every output folder and in the summary')
    parser.add_argument('--apply-exif', action='store_true',
                        help='analyse and show photos in the orientation their EXIF tag '
                        'gives (as viewers show them); by default pixels are used as '
                        'stored, as training reads them. Noted per image')
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument('--dpi', type=float,
                       help='resolution of every input (dots per inch), instead of what '
                       'the files declare: areas in mm^2, lengths in mm')
    scale.add_argument('--px-per-mm', type=float,
                       help='resolution of every input in pixels per mm (as --dpi)')
    parser.add_argument('--min-region-px', type=int, default=DEFAULT_MIN_REGION_PX,
                        help='connected regions smaller than this are not counted '
                        f'(default {DEFAULT_MIN_REGION_PX})')
    parser.add_argument('--unsure-below', type=float, default=DEFAULT_THRESHOLD,
                        help='top-class probability below which predicted damage is '
                        f'listed as unsure, to review first (default {DEFAULT_THRESHOLD})')
    parser.add_argument('--zoom-from', type=int, default=ZOOM_FROM,
                        help='write a zoomable deep-zoom view for images whose longest '
                        f'side is at least this (px; default {ZOOM_FROM}; 0: never)')
    parser.add_argument('--export', type=export_formats, default=(),
                        metavar='FORMAT[,FORMAT]',
                        help='also write the masks for other tools, under OUT/exports: '
                        f'{", ".join(FORMATS)} (GeoJSON for QGIS/QuPath, one COCO JSON, '
                        'one CVAT Segmentation mask 1.1 zip, Label Studio predictions, '
                        'IIIF/W3C annotation pages)')
    parser.add_argument('--iiif-canvas', metavar='TEMPLATE',
                        help='the IIIF canvas id the annotations target, {name} filled in '
                        "with each image's name (e.g. https://example.org/iiif/{name}/canvas/1)")
    parser.add_argument('--plain-model', action='store_true',
                        help='predict with the model as built, without the inference '
                        'speed-ups (artseg_mm.acceleration.optimize_for_inference)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if args.max_pixels < 1:
        parser.error(f'--max-pixels must be >= 1, got {args.max_pixels}')
    for name in ('dpi', 'px_per_mm'):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.min_region_px < 1:
        parser.error(f'--min-region-px must be >= 1, got {args.min_region_px}')
    if not 0 < args.unsure_below < 1:
        parser.error(f'--unsure-below must be between 0 and 1, got {args.unsure_below}')
    if args.iiif_canvas is not None and 'iiif' not in args.export:
        parser.error('--iiif-canvas names the canvas of IIIF annotations: add --export iiif')
    if args.resume and args.force:
        parser.error('--resume continues the run in --out, --force replaces it: choose one')
    if args.resume and args.random_weights:
        parser.error('--resume: untrained random weights differ from run to run; nothing '
                     'to continue')
    if (osp.isfile(args.model) and not is_exported_model(args.model)
            and args.checkpoint is None and not args.random_weights):
        parser.error(f'--model {args.model} is a config: give its weights with --checkpoint '
                     '(or a work dir or model folder as --model); --random-weights segments '
                     'with untrained weights, only to try the tool')
    return args


def export_formats(text: str):
    """``--export geojson,coco``: the names, each checked."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(',') if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f'unknown export format {", ".join(unknown) or text!r}; '
                                         f'choose from {", ".join(FORMATS)}')
    return names


def collect_inputs(inputs, recursive: bool = False):
    """``(path, relative)`` of every image, in the order given (folders and globs
    sorted); ``relative`` is its path under a searched folder (kept in the
    output names), None for files and globs. A named file that is not an image
    is an error; other files, and subfolders not searched, are reported."""
    found, ignored, subfolders = [], [], []
    for item in inputs:
        if osp.isdir(item):
            names = _folder_images(item, recursive, ignored, subfolders)
        elif osp.isfile(item):
            if not item.lower().endswith(IMAGE_EXTENSIONS):
                raise ValueError(f'{item}: not a PNG, JPEG or TIFF file')
            names = [(item, None)]
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise FileNotFoundError(f'{item}: no such file or folder, and no match as '
                                        'a glob')
            names = [(name, None) for name in matches
                     if _keep(name, ignored, subfolders)]
        found.extend(names)
    if ignored:
        shown = ', '.join(ignored[:5]) + (' ...' if len(ignored) > 5 else '')
        print(f'infer: {len(ignored)} files are not PNG/JPEG/TIFF and are left out: '
              f'{shown}', file=sys.stderr)
    if subfolders:
        shown = ', '.join(subfolders[:5]) + (' ...' if len(subfolders) > 5 else '')
        print(f'infer: {len(subfolders)} subfolders are not searched (--recursive searches '
              f'them): {shown}', file=sys.stderr)
    if not found:
        raise FileNotFoundError(f'no PNG, JPEG or TIFF images in {" ".join(inputs)}'
                                + ('' if recursive or not subfolders else
                                   ' (its subfolders are searched with --recursive)'))
    return list({path: (path, relative) for path, relative in found}.values())


def _keep(name: str, ignored: list, subfolders: list) -> bool:
    if osp.isdir(name):
        subfolders.append(name)
        return False
    if not name.lower().endswith(IMAGE_EXTENSIONS):
        ignored.append(name)
        return False
    return True


def _folder_images(folder: str, recursive: bool, ignored: list, subfolders: list):
    """A folder's images as ``(path, path relative to the folder)``, sorted."""
    if not recursive:
        names = sorted(glob.glob(osp.join(folder, '*')))
        return [(name, osp.relpath(name, folder)) for name in names
                if _keep(name, ignored, subfolders)]
    images = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file in sorted(files):
            name = osp.join(root, file)
            if _keep(name, ignored, subfolders):
                images.append((name, osp.relpath(name, folder)))
    return sorted(images, key=lambda item: item[1])


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # usage mistakes: one line, nothing written
        inputs = collect_inputs(args.inputs, args.recursive)
        paths = [path for path, _ in inputs]
        check_output_dir(args.out, args.force or args.resume)
        if args.resume and not osp.isfile(osp.join(args.out, RUN_FILE)):
            raise FileNotFoundError(f'--resume: {args.out} holds no run of tools/infer.py '
                                    f'to continue (no {RUN_FILE})')
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f'infer: {error}', file=sys.stderr)
        return 2
    options = dict(args.cfg_options or {})
    if args.window_batch is not None:
        options['model.test_cfg.batch_size'] = args.window_batch
    if args.bf16 and is_exported_model(args.model):
        print('infer: --bf16 ignored: an exported model computes in float32',
              file=sys.stderr)
    elif args.bf16 and args.device == 'cpu' and not cpu_supports_bf16():
        print('infer: --bf16 ignored: this CPU has no bf16 kernels (avx512_bf16/amx_bf16), '
              'running fp32', file=sys.stderr)
    elif args.bf16:
        options['model.test_cfg.autocast_dtype'] = 'bfloat16'
    try:
        inferencer = ScanInferencer(args.model, args.checkpoint, device=args.device,
                                    cfg_options=options, max_pixels=args.max_pixels,
                                    optimize=not args.plain_model)
    except (ValueError, FileNotFoundError) as error:  # a model or option that cannot work
        print(f'infer: {error}', file=sys.stderr)
        return 2
    try:  # the folder is made only once the model is loaded, and held by this run
        lock = OutputLock(args.out)
    except FileExistsError as error:
        print(f'infer: {error}', file=sys.stderr)
        return 2
    with lock:
        run = describe_run(inferencer, dict(options, **mask_options(args)), args.device,
                           paths)
        try:
            if args.resume:
                run['started'] = check_resumable(args.out, run)['started']
                make_output_dirs(args.out)
            else:
                prepare_output_dir(args.out, args.force)
        except (FileNotFoundError, ValueError) as error:
            print(f'infer: {error}', file=sys.stderr)
            return 2
        if not args.resume:
            run['started'] = utc_now()
            write_json_atomic(osp.join(args.out, RUN_FILE), run)
        return segment(args, inputs, inferencer, run)


def describe_run(inferencer, options: dict, device: str, paths) -> dict:
    """What a resumed run must share with the run it continues: the weights
    (sha256 of the file), the options that can change masks, the device, the inputs."""
    model = inferencer.model
    weights = getattr(model, 'checkpoint_path', None) or getattr(model, 'path', None)
    return dict(model_sha256=sha256_of(weights) if weights else 'untrained random weights',
                options={key: repr(value) for key, value in sorted(options.items())},
                device=device, inputs=list(paths))


def mask_options(args) -> dict:
    """The command-line choices that change what is written, for run.json (a
    resumed run must share them) and the provenance."""
    return dict(plain_model=args.plain_model, recursive=args.recursive,
                apply_exif=args.apply_exif, dpi=args.dpi, px_per_mm=args.px_per_mm,
                min_region_px=args.min_region_px, unsure_below=args.unsure_below,
                zoom_from=args.zoom_from, export=','.join(args.export),
                iiif_canvas=args.iiif_canvas)


def image_name(path: str, relative) -> str:
    """How exports name an image's file (COCO ``file_name``, Label Studio
    ``data.image``): its path under the searched folder, else its file name, so
    the files stay valid on another machine with the images in one folder."""
    return (relative or osp.basename(path)).replace(os.sep, '/')


def export_restored(exports, out_dir: str, row: dict, name: str, image: str) -> None:
    """Add the mask of an image a resumed run had finished to the exports."""
    mask = cv2.imread(osp.join(out_dir, row['mask']), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise SystemExit(f"infer: --resume: cannot read {row['mask']} in {out_dir} for the "
                         'exports; start a new --out or use --force')
    scale = (row.get('measures') or {}).get('scale') or {}
    exports.add(mask, name, image_path=image, px_per_mm=scale.get('px_per_mm'))


def model_version(provenance: dict) -> str:
    """How exports name the model: its name and the start of its weights' sha256."""
    model = provenance['model']
    return f"{model['name']}@{str(model['weights_sha256'])[:12]}"


def given_resolution(args):
    """The resolution the user gave for every input, or None (read each file's)."""
    if args.dpi is not None:
        return resolution_from_dpi(args.dpi)
    if args.px_per_mm is not None:
        return resolution_from_px_per_mm(args.px_per_mm)
    return None


def load_oriented(args, inferencer, path):
    """``(image, transparent, notes)``: the scan as the config's loader reads it
    (warnings it raises become notes), turned to its EXIF display orientation
    with --apply-exif, and the orientation applied (1: none)."""
    with warnings.catch_warnings(record=True) as caught:  # kept in the record too
        warnings.simplefilter('always')
        image, transparent = inferencer.load_scan(path)
    orientation = file_orientation(path) if args.apply_exif else 1
    notes = list(dict.fromkeys(
        str(w.message) for w in caught if issubclass(w.category, IMAGE_WARNINGS)
        and not (orientation != 1 and issubclass(w.category, ExifOrientationWarning))))
    for other in caught:
        if not issubclass(other.category, IMAGE_WARNINGS):
            warnings.warn_explicit(other.message, other.category, other.filename,
                                   other.lineno)
    if orientation != 1:
        image = np.ascontiguousarray(to_display_orientation(image, orientation))
        if transparent is not None:
            transparent = np.ascontiguousarray(to_display_orientation(transparent,
                                                                      orientation))
        notes.append(f'EXIF orientation {orientation} applied (--apply-exif): analysed and '
                     'shown as viewers show the photo; masks are in that orientation, not '
                     'the stored one')
    return image, transparent, notes, orientation


def segment(args, inputs, inferencer, run: dict) -> int:
    """Segment every input into ``args.out`` (with ``--resume``, those not done yet)
    and write the report."""
    model_rss = rss_mib()
    provenance = dict(model=model_provenance(args.model, inferencer.model,
                                             run['model_sha256']),
                      options=run['options'], device=run['device'],
                      images=len(inputs), tools=tool_provenance(), date=run['started'])
    report = ScanReport(args.out, inferencer.classes, inferencer.palette, provenance,
                        zoom_from=args.zoom_from or None)
    given = given_resolution(args)
    exports = CollectionExport(osp.join(args.out, EXPORTS), inferencer.classes,
                               inferencer.palette, args.export,
                               model_version=model_version(provenance),
                               iiif_canvas=args.iiif_canvas) if args.export else None
    resumed = 0
    for path, relative in tqdm(inputs, desc='images', unit='img'):
        name = report.name_for(path, relative)
        done = report.finished(name) if args.resume else None
        if done is not None:
            report.restore(done)
            resumed += 1
            if exports is not None:  # the collection files are rebuilt from every mask
                export_restored(exports, args.out, done, name, image_name(path, relative))
            continue
        try:
            image, transparent, notes, orientation = load_oriented(args, inferencer, path)
        except Exception as error:  # every loader failure: stop, or skip and list it
            if not args.skip_bad:
                raise SystemExit(f'infer: {error}; --skip-bad skips unreadable files and '
                                 'lists them in the summary') from error
            tqdm.write(f'infer: skipping {path}: {error}')
            report.add_skipped(path, str(error), name)
            continue
        for note in notes:
            tqdm.write(f'infer: {note}')
        windows = inferencer.num_windows(image)
        with tqdm(total=windows, desc=osp.basename(path), unit='win', leave=False,
                  disable=windows < WINDOW_BAR_FROM) as bar:
            try:
                prediction = inferencer.predict(image, progress=bar.update,
                                                transparent=transparent, confidence=True)
            except ValueError as error:  # e.g. a fixed-size exported model, a smaller image
                raise SystemExit(f'infer: {path}: {error}') from error
        resolution = given or read_resolution(path)
        if resolution is not None and orientation in TURNED_ORIENTATIONS:
            resolution = swap_axes(resolution)
        measures = measurement_record(prediction.ids, inferencer.classes, resolution,
                                      min_region_px=args.min_region_px)
        review = low_confidence_review(
            prediction.ids, prediction.confidence, inferencer.classes, args.unsure_below,
            px_per_mm=resolution[:2] if resolution is not None else None)
        report.add(path, image, prediction.ids, name, notes=notes,
                   confidence=prediction.confidence, measures=measures, review=review)
        if exports is not None:
            exports.add(prediction.ids, name, image_path=image_name(path, relative),
                        px_per_mm=resolution[:2] if resolution is not None else None)
        del image, prediction, transparent
    report.finish()
    if exports is not None:
        written = exports.finish()
        print(f'infer: exports in {osp.join(args.out, EXPORTS)}: ' + ', '.join(
            f'{fmt} {path}' for fmt, path in written.items()))
    if args.resume:
        print(f'infer: resumed: {resumed} of {len(inputs)} images were already done')
    done = sum(row['status'] == 'ok' for row in report.rows)
    print(f'infer: {done} of {len(inputs)} images segmented -> {args.out}/index.html; '
          f'peak RSS {peak_rss_mib():.0f} MiB, {peak_rss_mib() - model_rss:.0f} MiB above '
          'the built model')
    if provenance['model']['training_data'].get('synthetic'):
        print('infer: this model was trained on synthetic demo images: its masks are not a '
              'damage assessment of real scans (the report says so too)', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
