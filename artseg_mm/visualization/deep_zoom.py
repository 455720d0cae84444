"""Deep-zoom pyramids of a scan and of its predicted damage, and a page that
shows them with OpenSeadragon, opened straight from disk.

An overlay downsized to ~1000 px turns the damage of a 6000 x 4000 scan into
hairlines; museums browse large scans as deep-zoom (DZI) tile pyramids. For one
scan :func:`write_deep_zoom` writes, under ``out_dir``::

    <name>/image.dzi, <name>/image_files/<level>/<col>_<row>.jpeg   the scan
    <name>/damage.dzi, <name>/damage_files/<level>/<col>_<row>.png  RGBA: class
        colour where the id is damage (not 0 = Clean, not 255 = ignore),
        transparent elsewhere
    (and a vips-properties.xml that libvips writes in each _files folder)

:func:`copy_viewer_assets` copies the vendored OpenSeadragon into ``out_dir``
once, and :func:`viewer_page` returns the HTML page that stacks the damage
layer on the scan (show/hide, opacity, legend). Every path in the page is
relative, so the folder can be moved or zipped and opened with ``file://``:
the tile sources are written into the page (a browser refuses to fetch a
``.dzi`` from disk) and the canvas drawer is chosen (WebGL cannot upload
``file://`` images).

pyvips builds the pyramids lazily from the numpy arrays (no copy of them), so
memory stays at about the arrays passed in plus tile buffers.
"""
import html
import json
import os
import os.path as osp
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Sequence, Tuple
from urllib.parse import quote

import numpy as np

IGNORE_ID = 255  # the ignore index of the masks (artefact_classes.IGNORE_INDEX)
CLEAN_ID = 0
DZI_NAMESPACE = 'http://schemas.microsoft.com/deepzoom/2008'
TILE_SIZE = 254  # with a 1 px overlap a tile is 256 px: the usual DZI choice
OVERLAP = 1
JPEG_QUALITY = 85
# How a damage pixel of a zoomed-out level is made from 2 x 2 pixels above it.
# 'max' keeps a 1 px scratch visible, in its colour, at every zoom (the reason
# for the viewer); 'mean' fades it to near transparency when zoomed out.
DAMAGE_SHRINK = 'max'
SHRINKS = ('max', 'mean', 'median', 'mode', 'min', 'nearest')  # libvips' region_shrink
STATIC_OSD = Path(__file__).resolve().parent / 'static' / 'openseadragon'
OSD_DIR_NAME = 'openseadragon'
OSD_SCRIPT = 'openseadragon.min.js'
DEFAULT_OPACITY = 0.7


def _pyvips():
    """Import pyvips on first use, so the rest of the package works without it."""
    try:
        import pyvips
    except ImportError as error:  # only the deep-zoom view needs libvips
        raise ImportError('deep-zoom tiles need pyvips with libvips: pip install '
                          'pyvips pyvips-binary') from error
    return pyvips


def check_name(name: str) -> None:
    """``name`` becomes a folder in ``out_dir``: refuse what would land elsewhere."""
    if not name or name in ('.', '..') or '/' in name or '\\' in name or '\0' in name \
            or name.startswith('.'):
        raise ValueError(f'deep-zoom name {name!r} must be a plain file name '
                         '(no path separators, not starting with a dot)')


def check_inputs(image_bgr: np.ndarray, mask: np.ndarray, palette: Sequence) -> None:
    """Say which input is wrong before libvips gives a less clear error."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f'image must be H x W x 3 uint8 (BGR), got {image_bgr.shape} '
                         f'{image_bgr.dtype}')
    if mask.dtype != np.uint8 or mask.shape != image_bgr.shape[:2]:
        raise ValueError(f'mask must be uint8 of the image size {image_bgr.shape[:2]}, '
                         f'got {mask.shape} {mask.dtype}')
    if not 1 <= len(palette) < IGNORE_ID:
        raise ValueError(f'palette must give 1..{IGNORE_ID - 1} colours, got {len(palette)}')


def damage_lut(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """256 x 4 uint8 RGBA per class id: the class colour, opaque, for damage;
    transparent for Clean (0), the ignore id (255) and ids without a colour."""
    colours = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    if colours.min() < 0 or colours.max() > 255:
        raise ValueError('palette colours must be RGB values in 0..255')
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:len(colours), :3] = colours
    lut[:len(colours), 3] = 255
    lut[CLEAN_ID] = 0
    lut[IGNORE_ID] = 0
    return lut


def _vips_view(pyvips, array: np.ndarray):
    """A libvips image reading the numpy array's memory (no copy; pyvips keeps
    a reference to the buffer while the image lives)."""
    array = np.ascontiguousarray(array)  # a copy only for a strided view
    height, width = array.shape[:2]
    bands = 1 if array.ndim == 2 else array.shape[2]
    return pyvips.Image.new_from_memory(array.data, width, height, bands, 'uchar')


def check_mask_ids(vmask, num_classes: int) -> None:
    """A class id with no colour is a wrong palette (or mask): refuse it rather
    than draw it transparent. One streamed pass (libvips histogram), no copy."""
    hist = np.frombuffer(vmask.hist_find().write_to_memory(), dtype=np.uint32)
    unknown = [i for i in np.flatnonzero(hist) if num_classes <= i != IGNORE_ID]
    if unknown:
        raise ValueError(f'mask holds class ids {unknown[:5]} but the palette has '
                         f'{num_classes} colours')


def read_dzi(path: str) -> Dict:
    """Format, overlap, tile size and size that dzsave wrote, read back so the
    page describes the tiles exactly as they are on disk."""
    root = ET.parse(path).getroot()
    size = root.find(f'{{{DZI_NAMESPACE}}}Size')
    if root.tag != f'{{{DZI_NAMESPACE}}}Image' or size is None:
        raise ValueError(f'{path} is not a Deep Zoom (2008) image description')
    return dict(format=root.get('Format'), overlap=int(root.get('Overlap')),
                tile_size=int(root.get('TileSize')), width=int(size.get('Width')),
                height=int(size.get('Height')))


def level_count(width: int, height: int) -> int:
    """DZI levels down to 1 x 1: level 0 is one pixel, the last the full size."""
    return int(np.ceil(np.log2(max(width, height)))) + 1


def _damage_interpretation(shrink: str) -> str:
    """How libvips should see the RGBA damage layer when it shrinks the levels.

    Seen as sRGB with alpha, dzsave premultiplies and averages, whatever
    ``region_shrink`` says: colours stay true but a 1 px line loses half its
    alpha per level. Seen as plain 4-band data it applies ``region_shrink``
    to each band ('max': a line keeps its colour, opaque, at every level;
    where classes meet, the per-band maximum mixes their colours). The tiles
    are RGBA PNGs either way.
    """
    return 'srgb' if shrink == 'mean' else 'multiband'


def write_deep_zoom(image_bgr: np.ndarray, mask: np.ndarray, palette: Sequence[Sequence[int]],
                    out_dir: str, name: str, tile_size: int = TILE_SIZE,
                    overlap: int = OVERLAP, damage_shrink: str = DAMAGE_SHRINK) -> Dict:
    """Write the scan's and the damage layer's DZI pyramids under ``out_dir/name``.

    ``image_bgr``: H x W x 3 uint8 in OpenCV's BGR order; ``mask``: H x W uint8
    class ids (255: ignore); ``palette``: RGB per class id. The pyramids are
    written into a hidden folder and renamed into place once complete, so a
    killed run never leaves a half pyramid that looks finished; an existing
    ``out_dir/name`` is refused (remove it to write it again).

    Returns what :func:`viewer_page` needs: ``width``, ``height``, ``tile_size``,
    ``overlap``, ``levels`` and, for ``image`` and ``damage``, the ``dzi`` file,
    the ``tiles`` folder (ending in '/') and the tile ``format`` (and the
    damage layer's ``shrink``); paths are relative to ``out_dir``, with '/'.
    """
    check_name(name)
    check_inputs(image_bgr, mask, palette)
    if damage_shrink not in SHRINKS:
        raise ValueError(f'damage_shrink must be one of {SHRINKS}, got {damage_shrink!r}')
    final = osp.join(out_dir, name)
    if osp.lexists(final):
        raise FileExistsError(f'{final} exists; remove it to write the deep-zoom tiles again')
    pyvips = _pyvips()
    vmask = _vips_view(pyvips, mask)
    check_mask_ids(vmask, len(palette))
    partial = osp.join(out_dir, f'.{name}.partial')
    if osp.isdir(partial):  # left by a failed or killed call: ours to replace
        shutil.rmtree(partial)
    os.makedirs(partial)
    bgr = _vips_view(pyvips, image_bgr)
    rgb = bgr[2].bandjoin([bgr[1], bgr[0]]).copy(interpretation='srgb')
    lut = _vips_view(pyvips, damage_lut(palette)[None])  # 256 x 1, 4 bands
    rgba = vmask.maplut(lut).copy(interpretation=_damage_interpretation(damage_shrink))
    layers = dict(image=(rgb, f'.jpeg[Q={JPEG_QUALITY}]', 'mean'),
                  damage=(rgba, '.png', damage_shrink))
    info: Dict = {}
    for layer, (vimage, suffix, shrink) in layers.items():
        vimage.dzsave(osp.join(partial, layer), layout='dz', tile_size=tile_size,
                      overlap=overlap, suffix=suffix, region_shrink=shrink)
        described = read_dzi(osp.join(partial, f'{layer}.dzi'))
        info[layer] = dict(dzi=f'{name}/{layer}.dzi', tiles=f'{name}/{layer}_files/',
                           format=described.pop('format'))
        if layer == 'damage':
            info[layer]['shrink'] = shrink
        info.update(described)
    os.rename(partial, final)
    info['levels'] = level_count(info['width'], info['height'])
    return info


def osd_source_dir() -> Path:
    """The vendored OpenSeadragon folder (package data next to this module)."""
    if not (STATIC_OSD / OSD_SCRIPT).is_file():
        raise FileNotFoundError(f'{STATIC_OSD / OSD_SCRIPT} is missing: the package was '
                                'installed without its static files (package_data)')
    return STATIC_OSD


def copy_viewer_assets(out_dir: str) -> str:
    """Copy OpenSeadragon into ``out_dir/openseadragon`` unless an identical copy
    is there, so the report folder is self-contained; returns that folder's name
    relative to ``out_dir``."""
    source = osd_source_dir()
    target = Path(out_dir) / OSD_DIR_NAME
    script = target / OSD_SCRIPT
    if script.is_file() and script.read_bytes() == (source / OSD_SCRIPT).read_bytes():
        return OSD_DIR_NAME
    shutil.copytree(source, target, dirs_exist_ok=True)
    return OSD_DIR_NAME


def check_relative(path: str, what: str) -> None:
    """The page must move with its folder: refuse absolute paths and URLs."""
    if osp.isabs(path) or '://' in path or path.startswith('\\') or re.match('[A-Za-z]:', path):
        raise ValueError(f'{what} must be a relative path, got {path!r}')


def _join_url(folder: str, rel: str) -> str:
    """``folder``/``rel`` as a URL path, each part percent-quoted: a scan name
    may hold '#', '?', '%' or spaces."""
    parts = [p for p in f'{folder}/{rel}'.split('/') if p not in ('', '.')]
    url = '/'.join(quote(p) for p in parts)
    return url + '/' if rel.endswith('/') else url


def dzi_source(info: Dict, layer: str, tiles_dir_relative: str) -> Dict:
    """The inline form of a DZI that OpenSeadragon takes instead of fetching
    the ``.dzi`` (which a page opened from disk cannot)."""
    return {'Image': {'xmlns': DZI_NAMESPACE,
                      'Url': _join_url(tiles_dir_relative, info[layer]['tiles']),
                      'Format': info[layer]['format'], 'Overlap': str(info['overlap']),
                      'TileSize': str(info['tile_size']),
                      'Size': {'Width': str(info['width']), 'Height': str(info['height'])}}}


def _script_json(data) -> str:
    """JSON that cannot end the <script> it sits in ('</script>' in a name)."""
    return (json.dumps(data).replace('<', '\\u003c').replace('>', '\\u003e')
            .replace('&', '\\u0026'))


def _legend_html(legend: Sequence[Tuple[str, Sequence[int]]]) -> str:
    """Swatch and escaped name per class: the layer's colours need a key."""
    items = []
    for label, (r, g, b) in legend:
        items.append(f'<li><span class="swatch" style="background:rgb({int(r)},{int(g)},'
                     f'{int(b)})"></span>{html.escape(str(label))}</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


# The page's behaviour; the sources come from the JSON block, never from code.
_SCRIPT = """
const config = JSON.parse(document.getElementById('zoom-config').textContent);
const show = document.getElementById('show-damage');
const opacity = document.getElementById('damage-opacity');
const viewer = OpenSeadragon({
  id: 'viewer', prefixUrl: config.prefixUrl, tileSources: config.image,
  drawer: 'canvas',  // WebGL cannot use the tiles of a page opened from disk
  showNavigator: true, maxZoomPixelRatio: 4, visibilityRatio: 0.5
});
let damage = null;
function applyDamage() {
  if (damage) { damage.setOpacity(show.checked ? opacity.value / 100 : 0); }
}
viewer.addHandler('open', function () {
  viewer.addTiledImage({tileSource: config.damage, index: 1,
                        success: function (event) { damage = event.item; applyDamage(); }});
});
show.addEventListener('change', applyDamage);
opacity.addEventListener('input', applyDamage);
"""

# the layout of the project's viewer pages: a header with a legend over a full-page viewer
VIEWER_STYLE = """
html, body {margin: 0; height: 100%; font-family: sans-serif; font-size: 14px}
body {display: flex; flex-direction: column}
header {padding: 6px 10px; display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center}
header h1 {font-size: 16px; margin: 0}
#viewer {flex: 1; background: #222; min-height: 200px}
.legend {list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 12px}
.swatch {display: inline-block; width: 12px; height: 12px; margin-right: 4px;
         border: 1px solid #000; vertical-align: middle}
"""
_STYLE = VIEWER_STYLE + """.note {color: #555; font-size: 12px}
"""


def viewer_page(info: Dict, title: str, legend: Sequence[Tuple[str, Sequence[int]]],
                osd_dir_relative: str, tiles_dir_relative: str = '.') -> str:
    """A standalone HTML page: the scan with its damage layer on top, a checkbox
    to hide the layer, a slider for its opacity and the ``legend`` ((class name,
    RGB) pairs).

    ``info`` is :func:`write_deep_zoom`'s answer; ``osd_dir_relative`` is the
    OpenSeadragon folder and ``tiles_dir_relative`` the ``out_dir`` given to
    ``write_deep_zoom``, both relative to where the page is saved (``'.'``:
    the page is saved in ``out_dir``).
    """
    check_relative(osd_dir_relative, 'osd_dir_relative')
    check_relative(tiles_dir_relative, 'tiles_dir_relative')
    config = dict(prefixUrl=_join_url(osd_dir_relative, 'images/'),
                  image=dzi_source(info, 'image', tiles_dir_relative),
                  damage=dzi_source(info, 'damage', tiles_dir_relative))
    esc_title = html.escape(title)
    script_src = html.escape(_join_url(osd_dir_relative, OSD_SCRIPT))
    percent = int(round(DEFAULT_OPACITY * 100))
    note = ('<span class="note">zoomed out, thin damage is drawn at least one pixel '
            'wide</span>' if info['damage'].get('shrink') == 'max' else '')
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<title>{esc_title}</title><style>{_STYLE}</style></head><body><header>'
        f'<h1>{esc_title}</h1><span>{info["width"]} x {info["height"]} px</span>'
        '<label><input type="checkbox" id="show-damage" checked> damage</label>'
        f'<label>opacity <input type="range" id="damage-opacity" min="0" max="100" '
        f'value="{percent}"></label>{_legend_html(legend)}'
        f'{note}</header><div id="viewer"></div>'
        '<noscript>The zoomable view needs JavaScript.</noscript>'
        f'<script type="application/json" id="zoom-config">{_script_json(config)}</script>'
        f'<script src="{script_src}"></script><script>{_SCRIPT}</script></body></html>')
