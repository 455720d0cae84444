"""Write a small collection of "scans" to try tools/infer.py on, made from the demo images.

    python tools/misc/make_demo_scans.py          # data/demo_scans from data/artefact_demo
    python tools/misc/make_demo_scans.py --demo-root DIR --out DIR --force

A collection as a conservator's folder holds it: a 600 dpi 16-bit TIFF of a large
sheet (the demo val images tiled, 3000x2000), a phone photo (JPEG) whose EXIF
orientation turns it, and a nested folder with a 300 dpi PNG page and a PNG that
declares no resolution. The pictures are the synthetic demo paintings, so the
demo model's masks mean something on them; the files exercise the resolution
tags, EXIF orientation, 16-bit data and subfolders.
"""
import argparse
import glob
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
from PIL import Image

SHEET = (2000, 3000)  # height, width of the large TIFF
SHEET_DPI = 600
PAGE_DPI = 300
EXIF_ORIENTATION = 0x0112


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--demo-root', default='data/artefact_demo',
                        help='the demo dataset (tools/misc/make_demo_data.py)')
    parser.add_argument('--out', default='data/demo_scans', help='output folder')
    parser.add_argument('--force', action='store_true', help='replace --out if it exists')
    return parser.parse_args(argv)


def tiled_sheet(images, shape) -> np.ndarray:
    """The images tiled in a grid until ``shape`` is covered, then cut to it."""
    tile_h, tile_w = images[0].shape[:2]
    rows, cols = -(-shape[0] // tile_h), -(-shape[1] // tile_w)
    grid = [[images[(r * cols + c) % len(images)] for c in range(cols)] for r in range(rows)]
    return np.concatenate([np.concatenate(row, axis=1) for row in grid])[:shape[0], :shape[1]]


def write_scans(images, out: str) -> list:
    """Write the collection; returns the files written."""
    os.makedirs(osp.join(out, 'box_2'))
    sheet = tiled_sheet(images, SHEET).astype(np.uint16) * 257  # 16-bit, full range
    files = [osp.join(out, 'sheet_600dpi.tif')]
    cv2.imwrite(files[-1], sheet, [cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI,
                                   SHEET_DPI, cv2.IMWRITE_TIFF_YDPI, SHEET_DPI])
    upright = cv2.cvtColor(tiled_sheet(images[1:], (384, 512)), cv2.COLOR_BGR2RGB)
    photo = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # stored turned
    exif = photo.getexif()
    exif[EXIF_ORIENTATION] = 6  # viewers turn it 90 degrees clockwise, upright again
    files.append(osp.join(out, 'phone_photo.jpg'))
    photo.save(files[-1], quality=92, exif=exif.tobytes())
    files.append(osp.join(out, 'box_2', 'page_300dpi.png'))
    Image.fromarray(cv2.cvtColor(images[2], cv2.COLOR_BGR2RGB)).save(
        files[-1], dpi=(PAGE_DPI, PAGE_DPI))
    files.append(osp.join(out, 'box_2', 'no_resolution.png'))
    cv2.imwrite(files[-1], images[3])
    return files


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = sorted(glob.glob(osp.join(args.demo_root, 'img_dir', 'val', '*.png')))
    if len(paths) < 4:
        print(f'make_demo_scans: {args.demo_root}/img_dir/val holds {len(paths)} images, '
              'at least 4 are needed: run tools/misc/make_demo_data.py first', file=sys.stderr)
        return 2
    if osp.exists(args.out):
        if not args.force:
            print(f'make_demo_scans: {args.out} exists; pass --force to replace it',
                  file=sys.stderr)
            return 2
        shutil.rmtree(args.out)
    files = write_scans([cv2.imread(p) for p in paths], args.out)
    print(f'make_demo_scans: {len(files)} files in {args.out}: ' + ', '.join(
        osp.relpath(f, args.out) for f in files))
    return 0


if __name__ == '__main__':
    sys.exit(main())
