"""Segment your own scans with a trained model.

    python tools/infer.py INPUT [INPUT ...] --model MODEL --out DIR [--checkpoint CKPT]

INPUT is an image file, a folder (its PNG, JPEG and TIFF files) or a quoted glob;
MODEL a work dir (its config and best checkpoint, else the last), a model folder
(written by tools/misc/package_model.py), a config (with --checkpoint; without one it
is refused unless --random-weights asks for untrained weights) or a model exported by
tools/deployment/export.py (.onnx, run by onnxruntime; it carries its config, classes
and palette). Images are read by the config's own loader, as in training (8/16-bit,
grey/RGB/RGBA, EXIF orientation), after their header is checked against --max-pixels
(default 250 Mpx: a small file can declare a huge image). Sliding-window inference
with bounded memory: any scan size.
Writes DIR/masks, DIR/overlays, DIR/summary.csv and .json, DIR/index.html and the
per-image records that let --resume continue a run that stopped (see
artseg_mm.visualization.scan_report). One run at a time per DIR.
"""
import argparse
import glob
import os.path as osp
import sys
import warnings

from tqdm import tqdm

from artseg_mm.apis import ScanInferencer
from artseg_mm.apis.inferencer import DEFAULT_MAX_PIXELS
from artseg_mm.apis.model_folder import sha256_of
from artseg_mm.datasets.image_header import IMAGE_WARNINGS
from artseg_mm.deployment import is_exported_model
from artseg_mm.engine import cpu_supports_bf16
from artseg_mm.cli import add_cfg_options
from artseg_mm.utils.memory import peak_rss_mib, rss_mib
from artseg_mm.visualization.scan_report import (RUN_FILE, OutputLock, ScanReport,
                                                 check_output_dir, check_resumable,
                                                 make_output_dirs, prepare_output_dir,
                                                 write_json_atomic)

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
WINDOW_BAR_FROM = 16  # show a progress bar over windows from this many on


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
    parser.add_argument('--plain-model', action='store_true',
                        help='predict with the model as built, without the inference '
                        'speed-ups (artseg_mm.acceleration.optimize_for_inference)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if args.max_pixels < 1:
        parser.error(f'--max-pixels must be >= 1, got {args.max_pixels}')
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


def collect_inputs(inputs):
    """Image paths in the order given (folders and globs sorted); a named file
    that is not an image is an error, other files in a folder are reported."""
    paths, ignored = [], []
    for item in inputs:
        if osp.isdir(item):
            names = sorted(glob.glob(osp.join(item, '*')))
        elif osp.isfile(item):
            if not item.lower().endswith(IMAGE_EXTENSIONS):
                raise ValueError(f'{item}: not a PNG, JPEG or TIFF file')
            names = [item]
        else:
            names = sorted(glob.glob(item))
            if not names:
                raise FileNotFoundError(f'{item}: no such file or folder, and no match as '
                                        'a glob')
        for name in names:
            (paths if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(name)
    if ignored:
        shown = ', '.join(ignored[:5]) + (' ...' if len(ignored) > 5 else '')
        print(f'infer: {len(ignored)} files are not PNG/JPEG/TIFF and are left out: '
              f'{shown}', file=sys.stderr)
    if not paths:
        raise FileNotFoundError(f'no PNG, JPEG or TIFF images in {" ".join(inputs)}')
    return list(dict.fromkeys(paths))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # usage mistakes: one line, nothing written
        paths = collect_inputs(args.inputs)
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
        run = describe_run(inferencer, dict(options, plain_model=args.plain_model),
                           args.device, paths)
        try:
            if args.resume:
                check_resumable(args.out, run)
                make_output_dirs(args.out)
            else:
                prepare_output_dir(args.out, args.force)
        except (FileNotFoundError, ValueError) as error:
            print(f'infer: {error}', file=sys.stderr)
            return 2
        if not args.resume:
            write_json_atomic(osp.join(args.out, RUN_FILE), run)
        return segment(args, paths, inferencer)


def describe_run(inferencer, options: dict, device: str, paths) -> dict:
    """What a resumed run must share with the run it continues: the weights
    (sha256 of the file), the options that can change masks, the device, the inputs."""
    model = inferencer.model
    weights = getattr(model, 'checkpoint_path', None) or getattr(model, 'path', None)
    return dict(model_sha256=sha256_of(weights) if weights else 'untrained random weights',
                options={key: repr(value) for key, value in sorted(options.items())},
                device=device, inputs=list(paths))


def segment(args, paths, inferencer) -> int:
    """Segment every path into ``args.out`` (with ``--resume``, those not done yet)
    and write the report."""
    model_rss = rss_mib()
    report = ScanReport(args.out, inferencer.classes, inferencer.palette)
    resumed = 0
    for path in tqdm(paths, desc='images', unit='img'):
        name = report.name_for(path)
        done = report.finished(name) if args.resume else None
        if done is not None:
            report.restore(done)
            resumed += 1
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:  # kept in the record too
                warnings.simplefilter('always')
                image, transparent = inferencer.load_scan(path)
        except Exception as error:  # every loader failure: stop, or skip and list it
            if not args.skip_bad:
                raise SystemExit(f'infer: {error}; --skip-bad skips unreadable files and '
                                 'lists them in the summary') from error
            tqdm.write(f'infer: skipping {path}: {error}')
            report.add_skipped(path, str(error), name)
            continue
        notes = list(dict.fromkeys(str(w.message) for w in caught
                                   if issubclass(w.category, IMAGE_WARNINGS)))
        for other in caught:
            if not issubclass(other.category, IMAGE_WARNINGS):
                warnings.warn_explicit(other.message, other.category, other.filename,
                                       other.lineno)
        for note in notes:
            tqdm.write(f'infer: {note}')
        windows = inferencer.num_windows(image)
        with tqdm(total=windows, desc=osp.basename(path), unit='win', leave=False,
                  disable=windows < WINDOW_BAR_FROM) as bar:
            try:
                mask = inferencer(image, progress=bar.update, transparent=transparent)
            except ValueError as error:  # e.g. a fixed-size exported model, a smaller image
                raise SystemExit(f'infer: {path}: {error}') from error
        report.add(path, image, mask, name, notes=notes)
        del image, mask, transparent
    report.finish()
    if args.resume:
        print(f'infer: resumed: {resumed} of {len(paths)} images were already done')
    done = sum(row['status'] == 'ok' for row in report.rows)
    print(f'infer: {done} of {len(paths)} images segmented -> {args.out}/index.html; '
          f'peak RSS {peak_rss_mib():.0f} MiB, {peak_rss_mib() - model_rss:.0f} MiB above '
          'the built model')
    return 0


if __name__ == '__main__':
    sys.exit(main())
