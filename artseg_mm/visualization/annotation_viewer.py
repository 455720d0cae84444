"""A page that shows a W3C Web Annotation page (what ``to_iiif`` exports) over its
image with OpenSeadragon and Annotorious, opened straight from disk.

Why it exists: an exported ``.iiif.json`` is meant for IIIF viewers, and before
sending it to one, or to check what it holds, a conservator wants to see the
outlines over the image without a server. :func:`annotation_page_viewer` returns
a standalone HTML page: OpenSeadragon shows the image (a plain ``image`` tile
source, no tiles), Annotorious draws each annotation read-only, outlined and
filled in its class colour with its class name beside it, and clicking one opens
Annotorious' popup with its tags. The annotation page is written into the page
as JSON (a browser opening a file refuses to fetch another), and every path is
relative, so the folder can be moved or zipped. :func:`copy_annotorious_assets`
copies the vendored Annotorious next to the page, as
:func:`~artseg_mm.visualization.deep_zoom.copy_viewer_assets` does for
OpenSeadragon.

Coordinates: Annotorious reads an SvgSelector in pixels of the full-size image
(x right, y down, origin at its top-left corner), which is what ``to_iiif``
writes (pixel-edge outlines). The browser draws the ``<path>`` as given, so
``fill-rule="evenodd"`` keeps holes empty and every subpath of a MultiPolygon is
drawn. Two things in Annotorious 2 (2.7.19) need the page to hand it adapted
copies of the selectors (the embedded annotation page stays as it was given):

- an ``<svg>`` root with an ``xmlns`` attribute (as ``to_iiif`` and the IIIF
  cookbook write it) makes it throw ("undefined is not iterable") and draw
  nothing; it adds the namespace itself to a root written exactly ``<svg>``;
- it finds the annotation under the pointer (hover, click) by splitting path
  data on spaces, so with ``x,y`` pairs no annotation is ever found. It also
  ignores holes there: a click in a hole picks the region around it.

Command line (writes the page and copies both viewers next to it)::

    python -m artseg_mm.visualization.annotation_viewer PAGE.iiif.json IMAGE \\
        --out OUT_DIR/NAME.html [--title TITLE]
"""
import argparse
import html
import json
import os
import os.path as osp
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .deep_zoom import (OSD_SCRIPT, VIEWER_STYLE, _join_url, _script_json, check_relative,
                        copy_viewer_assets)

STATIC_ANNOTORIOUS = Path(__file__).resolve().parent / 'static' / 'annotorious'
ANNOTORIOUS_DIR_NAME = 'annotorious'
ANNOTORIOUS_SCRIPT = 'openseadragon-annotorious.min.js'
ANNOTORIOUS_STYLE = 'annotorious.min.css'
# Annotorious 2 draws these two selector types and no others
DRAWN_SELECTORS = ('SvgSelector', 'FragmentSelector')
# bodies whose value names the class, best first (to_iiif writes 'tagging')
CLASS_PURPOSES = ('tagging', 'classifying', 'identifying')
UNLABELLED = '(no class)'
# distinct on a photograph, light and dark (Tableau 10)
CLASS_COLOURS = ((255, 127, 14), (31, 119, 180), (44, 160, 44), (214, 39, 40),
                 (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                 (188, 189, 34), (23, 190, 207))
FILL_OPACITY = 0.3


# ---------------------------------------------------------------- assets

def annotorious_source_dir() -> Path:
    """The vendored Annotorious folder (package data next to this module)."""
    for name in (ANNOTORIOUS_SCRIPT, ANNOTORIOUS_STYLE):
        if not (STATIC_ANNOTORIOUS / name).is_file():
            raise FileNotFoundError(f'{STATIC_ANNOTORIOUS / name} is missing: the package '
                                    'was installed without its static files (package_data)')
    return STATIC_ANNOTORIOUS


def copy_annotorious_assets(out_dir: str) -> str:
    """Copy Annotorious into ``out_dir/annotorious`` unless an identical copy is
    there, so the page's folder is self-contained; returns that folder's name
    relative to ``out_dir``."""
    source = annotorious_source_dir()
    target = Path(out_dir) / ANNOTORIOUS_DIR_NAME
    if all((target / name).is_file()
           and (target / name).read_bytes() == (source / name).read_bytes()
           for name in (ANNOTORIOUS_SCRIPT, ANNOTORIOUS_STYLE)):
        return ANNOTORIOUS_DIR_NAME
    shutil.copytree(source, target, dirs_exist_ok=True)
    return ANNOTORIOUS_DIR_NAME


# ---------------------------------------------------------------- the annotations

def _as_list(value) -> list:
    """Web Annotation fields hold one value or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def annotation_class(annotation: dict) -> str:
    """The class an annotation names: the value of its first TextualBody with a
    tagging (or classifying, identifying) purpose, else of its first TextualBody,
    else :data:`UNLABELLED`."""
    bodies = [body for body in _as_list(annotation.get('body'))
              if isinstance(body, dict) and body.get('type') == 'TextualBody'
              and isinstance(body.get('value'), str)]
    for purpose in CLASS_PURPOSES:
        for body in bodies:
            if purpose in _as_list(body.get('purpose')):
                return body['value']
    return bodies[0]['value'] if bodies else UNLABELLED


def _selectors(annotation: dict) -> List[dict]:
    """Every selector of every target (a target may be a bare canvas id)."""
    selectors = []
    for target in _as_list(annotation.get('target')):
        if isinstance(target, dict):
            selectors.extend(s for s in _as_list(target.get('selector')) if isinstance(s, dict))
    return selectors


def svg_extent(svg: str) -> Optional[Tuple[float, float, float, float]]:
    """min x, min y, max x, max y of the coordinates of the ``<path>``/``<polygon>``
    in an SvgSelector value, or None for other shapes (circles, ellipses): enough
    to tell an outline drawn for another image size. Refuses SVG that does not
    parse, which Annotorious would fail to draw."""
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as error:
        raise ValueError(f'SvgSelector value is not well-formed SVG ({error}): '
                         f'{svg[:80]!r}') from error
    numbers: List[float] = []
    for element in root.iter():
        tag = element.tag.rsplit('}', 1)[-1]
        text = element.get('d') if tag == 'path' else (
            element.get('points') if tag == 'polygon' else None)
        if text:
            numbers.extend(_path_numbers(text))
    if len(numbers) < 2:
        return None
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


# an SVG number: compact path data runs them together ('1.5.5' is 1.5 and .5)
_NUMBER = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')


def _path_numbers(text: str) -> List[float]:
    """The numbers of polygon points or of path data of absolute straight lines;
    relative or curved commands give no usable extent and yield none."""
    if any(c.isalpha() and c not in 'MLZmlzeE' for c in text) or any(c in 'mlz' for c in text):
        return []
    return [float(token) for token in _NUMBER.findall(text)]


def check_annotation_page(page: dict, width: int, height: int) -> List[dict]:
    """The page's annotations, refused with the reason when Annotorious could not
    show them over a ``width`` x ``height`` image: not an AnnotationPage, an
    annotation without a unique id (Annotorious tracks them by id), or without an
    SvgSelector/FragmentSelector, or an outline outside the image (the page
    belongs to another image, or to the image at another size)."""
    if not isinstance(page, dict) or page.get('type') != 'AnnotationPage':
        raise ValueError('expected a W3C/IIIF AnnotationPage (a JSON object with '
                         f'"type": "AnnotationPage"), got {type(page).__name__} '
                         f'{str(page)[:60]!r}')
    items = page.get('items')
    if not isinstance(items, list):
        raise ValueError('the AnnotationPage has no "items" list')
    seen = set()
    for number, item in enumerate(items):
        where = f'annotation {number} ({item.get("id") if isinstance(item, dict) else item!r})'
        if not isinstance(item, dict) or item.get('type') != 'Annotation':
            raise ValueError(f'{where} is not an object with "type": "Annotation"')
        if not isinstance(item.get('id'), str) or not item['id']:
            raise ValueError(f'{where} has no id; Annotorious needs one per annotation')
        if item['id'] in seen:
            raise ValueError(f'{where}: the id is used twice; Annotorious needs unique ids')
        seen.add(item['id'])
        drawn = [s for s in _selectors(item) if s.get('type') in DRAWN_SELECTORS]
        if not drawn:
            raise ValueError(f'{where} has no selector Annotorious draws '
                             f'({", ".join(DRAWN_SELECTORS)})')
        for selector in drawn:
            if selector['type'] == 'SvgSelector':
                _check_extent(svg_extent(str(selector.get('value', ''))), width, height, where)
    return items


def _check_extent(extent, width: int, height: int, where: str) -> None:
    """An outline reaching beyond the image would be drawn in the wrong place."""
    if extent is None:
        return
    min_x, min_y, max_x, max_y = extent
    if min_x < 0 or min_y < 0 or max_x > width or max_y > height:
        raise ValueError(f'{where} spans x {min_x:g}..{max_x:g}, y {min_y:g}..{max_y:g}, '
                         f'outside the {width} x {height} image: the annotations were '
                         'made for another image or another size of it')


def class_table(items: Sequence[dict]) -> Tuple[List[str], Dict[str, int], List[int]]:
    """The class names in order of first appearance, annotation id -> class
    index, and the number of annotations per class."""
    names: List[str] = []
    of_id: Dict[str, int] = {}
    for item in items:
        name = annotation_class(item)
        if name not in names:
            names.append(name)
        of_id[item['id']] = names.index(name)
    tally = Counter(of_id.values())
    return names, of_id, [tally[index] for index in range(len(names))]


def class_colour(index: int) -> Tuple[int, int, int]:
    """The colour of the ``index``-th class (the list repeats after ten)."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


# ---------------------------------------------------------------- the page

# The page's behaviour; the data come from the JSON blocks, never from code.
_SCRIPT = """
const page = JSON.parse(document.getElementById('annotation-page').textContent);
const config = JSON.parse(document.getElementById('viewer-config').textContent);
const viewer = OpenSeadragon({
  id: 'viewer', prefixUrl: config.prefixUrl,
  tileSources: {type: 'image', url: config.image, buildPyramid: false},
  drawer: 'canvas',  // WebGL cannot use an image of a page opened from disk
  maxZoomPixelRatio: 8, visibilityRatio: 0.5, showRotationControl: false
});
// What Annotorious 2 needs of an SvgSelector value (the drawing is the same):
// a bare <svg> root, since with an xmlns on it Annotorious throws and draws
// nothing (it adds the namespace itself, to a root written exactly '<svg>');
// and path coordinates separated by spaces, since it finds the annotation under
// the pointer by splitting path data on spaces.
function forAnnotorious(annotation) {
  const copy = JSON.parse(JSON.stringify(annotation));
  const targets = Array.isArray(copy.target) ? copy.target : [copy.target];
  for (const target of targets) {
    if (!target || typeof target !== 'object') { continue; }
    const selectors = Array.isArray(target.selector) ? target.selector : [target.selector];
    for (const selector of selectors) {
      if (selector && selector.type === 'SvgSelector') {
        selector.value = selector.value.replace(/^\\s*<svg\\b[^>]*>/, '<svg>')
          .replace(/ d="([^"]*)"/g, (all, d) => ' d="' + d.replace(/,/g, ' ') + '"');
      }
    }
  }
  return copy;
}
function classOf(annotation) {
  const index = config.classOf[annotation.id];
  return index === undefined ? null : index;
}
function label(annotation) {
  const index = classOf(annotation);
  const text = document.createElementNS('http://www.w3.org/2000/svg', 'text');
  text.setAttribute('class', 'region-label');
  text.setAttribute('x', 0);
  text.setAttribute('y', -4);
  text.textContent = index === null ? '' : config.classes[index];
  return text;
}
const anno = OpenSeadragon.Annotorious(viewer, {
  readOnly: true,
  formatters: [annotation => {
    const index = classOf(annotation);
    return {className: index === null ? 'region' : 'region class-' + index,
            element: label(annotation)};
  }]
});
anno.setAnnotations(page.items.map(forAnnotorious));
viewer.addHandler('open', function () {
  const size = viewer.world.getItemAt(0).source.dimensions;
  if (size.x !== config.width || size.y !== config.height) {
    const warning = document.getElementById('size-warning');
    warning.textContent = 'The image is ' + size.x + ' x ' + size.y + ' px but the ' +
      'annotations are for ' + config.width + ' x ' + config.height +
      ' px: they are not where they belong.';
    warning.hidden = false;
  }
});
// OpenSeadragon hears of a new size one frame late (ResizeObserver); meanwhile
// the browser stretches its canvas and the outlines no longer match the image,
// which is the frame a screenshot taken right after a resize captures.
window.addEventListener('resize', function () { viewer.forceResize(); });
const labels = document.getElementById('show-labels');
labels.addEventListener('change', function () {
  document.getElementById('viewer').classList.toggle('no-labels', !labels.checked);
});
"""

_STYLE = VIEWER_STYLE + """.warning {color: #a00; font-weight: bold}
.note {color: #555; font-size: 12px}
.region-label {font: bold 12px sans-serif; fill: #fff; stroke: #000; stroke-width: 3px;
               paint-order: stroke; pointer-events: none}
#viewer.no-labels .region-label {display: none}
"""


def _class_css(count: int) -> str:
    """One rule per class: its colour for the outline, translucent for the fill
    (Annotorious' own rules would draw every outline white and unfilled)."""
    rules = []
    for index in range(count):
        r, g, b = class_colour(index)
        rules.append(f'.a9s-annotation.class-{index} .a9s-inner {{stroke: rgb({r},{g},{b}); '
                     f'stroke-width: 2px; fill: rgba({r},{g},{b},{FILL_OPACITY})}}')
    # after the class rules, so a hovered or selected outline still shows it
    rules.append('.a9s-annotation.hover .a9s-inner, .a9s-annotation.selected .a9s-inner '
                 '{stroke: #fff000}')
    return '\n'.join(rules)


def _legend_html(names: Sequence[str], counts: Sequence[int]) -> str:
    """Swatch, escaped name and number of annotations per class."""
    items = []
    for index, (name, count) in enumerate(zip(names, counts)):
        r, g, b = class_colour(index)
        items.append(f'<li><span class="swatch" style="background:rgb({r},{g},{b})"></span>'
                     f'{html.escape(name)} ({count})</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def annotation_page_viewer(annotation_page: dict, image_rel: str, width: int, height: int,
                           osd_rel: str, annotorious_rel: str, title: str) -> str:
    """A standalone HTML page showing ``annotation_page`` (a W3C/IIIF
    AnnotationPage as ``to_iiif`` returns it) over the image, read-only.

    ``image_rel``: the image, relative to where the page is saved; ``width`` x
    ``height``: its size in pixels, the units of the annotations (checked: an
    outline outside it is refused, and the page warns when the image it loads has
    another size). ``osd_rel`` and ``annotorious_rel``: the OpenSeadragon and
    Annotorious folders (see :func:`~artseg_mm.visualization.deep_zoom.copy_viewer_assets`
    and :func:`copy_annotorious_assets`), relative to the page. The annotation page
    is embedded unchanged in ``<script type="application/json"
    id="annotation-page">``.
    """
    for value, what in ((image_rel, 'image_rel'), (osd_rel, 'osd_rel'),
                        (annotorious_rel, 'annotorious_rel')):
        check_relative(value, what)
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f'width and height are the image size in pixels, got '
                         f'{width!r} x {height!r}')
    items = check_annotation_page(annotation_page, width, height)
    names, class_of, counts = class_table(items)
    config = dict(prefixUrl=_join_url(osd_rel, 'images/'), image=_join_url('.', image_rel),
                  width=width, height=height, classes=names, classOf=class_of)
    esc_title = html.escape(title)
    osd_src = html.escape(_join_url(osd_rel, OSD_SCRIPT))
    anno_src = html.escape(_join_url(annotorious_rel, ANNOTORIOUS_SCRIPT))
    anno_css = html.escape(_join_url(annotorious_rel, ANNOTORIOUS_STYLE))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<title>{esc_title}</title><link rel="stylesheet" href="{anno_css}">'
        f'<style>{_STYLE}{_class_css(len(names))}</style></head><body><header>'
        f'<h1>{esc_title}</h1><span>{width} x {height} px, {len(items)} annotations</span>'
        '<label><input type="checkbox" id="show-labels" checked> labels</label>'
        f'{_legend_html(names, counts)}'
        '<span class="note">click a region for its tags</span>'
        '<span class="warning" id="size-warning" hidden></span></header>'
        '<div id="viewer"></div><noscript>The viewer needs JavaScript.</noscript>'
        f'<script type="application/json" id="annotation-page">{_script_json(annotation_page)}'
        '</script>'
        f'<script type="application/json" id="viewer-config">{_script_json(config)}</script>'
        f'<script src="{osd_src}"></script><script src="{anno_src}"></script>'
        f'<script>{_SCRIPT}</script></body></html>')


# ---------------------------------------------------------------- command line

def _relative_url_path(path: str, start: str) -> str:
    """``path`` relative to the folder ``start``, with '/' (the page's URLs)."""
    try:
        relative = osp.relpath(path, start)
    except ValueError as error:  # another drive on Windows: no relative path exists
        raise ValueError(f'{path} and the page folder {start} share no relative path; '
                         'put the page on the same drive as the image') from error
    return relative.replace(os.sep, '/')


def write_viewer(page_path: str, image_path: str, out_html: str,
                 title: Optional[str] = None) -> Path:
    """Read an exported ``.iiif.json``, write the page at ``out_html`` and copy
    OpenSeadragon and Annotorious next to it; the image stays where it is."""
    from PIL import Image  # only the command line reads the image

    with open(page_path, encoding='utf-8') as stream:
        annotation_page = json.load(stream)
    with Image.open(image_path) as image:
        width, height = image.size
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    osd_rel = copy_viewer_assets(str(out.parent))
    annotorious_rel = copy_annotorious_assets(str(out.parent))
    image_rel = _relative_url_path(osp.abspath(image_path), osp.abspath(out.parent))
    text = annotation_page_viewer(annotation_page, image_rel, width, height, osd_rel,
                                  annotorious_rel, title or osp.basename(page_path))
    out.write_text(text, encoding='utf-8')
    return out


def main(argv=None) -> int:
    """Command line: a page for one exported file; 0 written, 1 the file cannot be
    shown on this image (the message says why), 2 a usage mistake."""
    parser = argparse.ArgumentParser(
        prog='annotation_viewer',
        description='Write a page showing a Web Annotation page (.iiif.json) over its '
        'image, opened from disk')
    parser.add_argument('annotations',
                        help='the AnnotationPage JSON (to_iiif, infer --export iiif)')
    parser.add_argument('image', help='the image the annotations were made on')
    parser.add_argument('--out', required=True, help='the HTML page to write')
    parser.add_argument('--title', help='the page title (default: the JSON file name)')
    args = parser.parse_args(argv)
    for path in (args.annotations, args.image):
        if not osp.isfile(path):
            parser.error(f'no such file: {path}')
    try:
        out = write_viewer(args.annotations, args.image, args.out, args.title)
    except (ValueError, OSError) as error:  # json.JSONDecodeError is a ValueError
        print(f'annotation_viewer: {error}', file=sys.stderr)
        return 1
    print(f'annotation_viewer: wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
