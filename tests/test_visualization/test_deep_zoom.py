"""Deep-zoom pyramids of a scan and its damage, and the page that shows them
from disk (artseg_mm.visualization.deep_zoom)."""
import json
import os.path as osp
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest

from artseg_mm.visualization.deep_zoom import (DZI_NAMESPACE, OVERLAP, TILE_SIZE,
                                               copy_viewer_assets, damage_lut,
                                               viewer_page, write_deep_zoom)

WIDTH, HEIGHT = 600, 400
PALETTE = [(0, 0, 0), (28, 230, 255), (255, 52, 255), (255, 74, 70)]
LEGEND = [('Material loss', PALETTE[1]), ('Peel', PALETTE[2]), ('Dust', PALETTE[3])]


def scan() -> np.ndarray:
    """A BGR image whose channels differ (a swapped order shows) and vary smoothly
    (JPEG keeps them close)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.dstack([np.full((HEIGHT, WIDTH), 200), xs * 200 // WIDTH,
                      30 + ys * 100 // HEIGHT]).astype(np.uint8)


def damage_mask() -> np.ndarray:
    """Clean, each damage class, the ignore id, and a 1 px scratch; crossing tile seams."""
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[50:300, 200:320] = 1
    mask[240:380, 420:590] = 2
    mask[:, 101] = 3            # a hairline, the case the viewer is for
    mask[0:40, 0:600] = 255     # ignored (transparent in the scan)
    return mask


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp('report') / 'zoom'
    info = write_deep_zoom(scan(), damage_mask(), PALETTE, str(out), 'scan #1')
    return out, info


def read_dzi(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def tile_span(index: int, length: int):
    """Pixels of the full-size level that tile ``index`` holds (its overlap included)."""
    return max(0, index * TILE_SIZE - OVERLAP), min(length, (index + 1) * TILE_SIZE + OVERLAP)


def test_dzi_files_describe_the_pyramids(written):
    out, info = written
    assert (info['width'], info['height']) == (WIDTH, HEIGHT)
    assert (info['tile_size'], info['overlap']) == (TILE_SIZE, OVERLAP)
    levels = int(np.ceil(np.log2(max(WIDTH, HEIGHT)))) + 1
    assert info['levels'] == levels
    for layer, ext in (('image', 'jpeg'), ('damage', 'png')):
        assert info[layer]['format'] == ext
        root = read_dzi(out / info[layer]['dzi'])
        assert root.tag == f'{{{DZI_NAMESPACE}}}Image'
        assert root.get('Format') == ext
        size = root.find(f'{{{DZI_NAMESPACE}}}Size')
        assert (size.get('Width'), size.get('Height')) == (str(WIDTH), str(HEIGHT))
        tiles = out / info[layer]['tiles']
        levels_on_disk = [p.name for p in tiles.iterdir() if p.is_dir()]
        assert sorted(map(int, levels_on_disk)) == list(range(levels))
        cols, rows = -(-WIDTH // TILE_SIZE), -(-HEIGHT // TILE_SIZE)
        top = {p.name for p in (tiles / str(levels - 1)).iterdir()}
        assert top == {f'{c}_{r}.{ext}' for c in range(cols) for r in range(rows)}
        assert {p.name for p in (tiles / '0').iterdir()} == {f'0_0.{ext}'}


def test_full_size_damage_tiles_match_the_mask(written):
    out, info = written
    mask, lut = damage_mask(), damage_lut(PALETTE)
    top = out / info['damage']['tiles'] / str(info['levels'] - 1)
    for tile in top.iterdir():
        col, row = (int(v) for v in tile.stem.split('_'))
        (x0, x1), (y0, y1) = tile_span(col, WIDTH), tile_span(row, HEIGHT)
        bgra = cv2.imread(str(tile), cv2.IMREAD_UNCHANGED)
        assert bgra.shape == (y1 - y0, x1 - x0, 4), tile.name
        region = mask[y0:y1, x0:x1]
        clear = (region == 0) | (region == 255)
        assert (bgra[..., 3][clear] == 0).all(), tile.name
        assert (bgra[..., 3][~clear] == 255).all(), tile.name
        rgb = bgra[..., 2::-1]
        assert (rgb[~clear] == lut[region[~clear], :3]).all(), tile.name
    assert (lut[[0, 255], 3] == 0).all()


def test_full_size_image_tiles_keep_the_colours(written):
    out, info = written
    image = scan()
    tile = out / info['image']['tiles'] / str(info['levels'] - 1) / '1_1.jpeg'
    (x0, x1), (y0, y1) = tile_span(1, WIDTH), tile_span(1, HEIGHT)
    read = cv2.imread(str(tile))
    diff = np.abs(read.astype(int) - image[y0:y1, x0:x1].astype(int))
    assert diff.mean(axis=(0, 1)).max() < 4  # BGR back as BGR: no channel swap


def test_zoomed_out_damage_keeps_hairlines(written):
    out, info = written
    half = out / info['damage']['tiles'] / str(info['levels'] - 2) / '0_0.png'
    bgra = cv2.imread(str(half), cv2.IMREAD_UNCHANGED)
    line = bgra[30:, 101 // 2]  # below the ignored band
    assert (line[:, 3] == 255).all()
    assert (line[:, 2::-1] == PALETTE[3]).all()


class References(HTMLParser):
    """The src/href attributes and the zoom-config JSON of a page."""

    def __init__(self):
        super().__init__()
        self.paths, self.config_text, self._in_config = [], '', False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.paths += [attrs[k] for k in ('src', 'href') if attrs.get(k)]
        self._in_config = attrs.get('id') == 'zoom-config'

    def handle_data(self, data):
        if self._in_config:
            self.config_text += data

    def handle_endtag(self, tag):
        self._in_config = False


def check_page_references(page_path: Path, info: dict) -> None:
    text = page_path.read_text(encoding='utf-8')
    parser = References()
    parser.feed(text)
    config = json.loads(parser.config_text)
    sources = [config[k]['Image'] for k in ('image', 'damage')]
    found = parser.paths + [config['prefixUrl']] + [s['Url'] for s in sources]
    assert len(found) == 4
    for ref in found:
        assert not osp.isabs(ref) and '://' not in ref, ref
        assert (page_path.parent / unquote(ref)).exists(), ref
    assert (page_path.parent / unquote(config['prefixUrl']) / 'home_rest.png').is_file()
    for source in sources:
        assert source['Url'].endswith('/')
        tile = f"{source['Url']}{info['levels'] - 1}/0_0.{source['Format']}"
        assert (page_path.parent / unquote(tile)).is_file(), tile
        assert source['Size'] == {'Width': str(WIDTH), 'Height': str(HEIGHT)}
    assert str(page_path.parent) not in text and 'file:' not in text


def test_page_next_to_the_tiles_references_existing_files(written):
    out, info = written
    osd = copy_viewer_assets(str(out))
    assert copy_viewer_assets(str(out)) == osd  # a second call keeps the copy
    page = out / 'scan.html'
    page.write_text(viewer_page(info, 'scan #1', LEGEND, osd), encoding='utf-8')
    check_page_references(page, info)


def test_page_above_the_tiles_references_existing_files(written):
    out, info = written
    report = out.parent
    copy_viewer_assets(str(report))
    page = report / 'zoom.html'
    page.write_text(viewer_page(info, 'scan', LEGEND, 'openseadragon',
                                tiles_dir_relative=out.name), encoding='utf-8')
    check_page_references(page, info)


def test_page_escapes_title_legend_and_names(written):
    _, info = written
    title = '<script>alert("t")</script> & co'
    text = viewer_page(info, title, [('<b>Dust</b>', (1, 2, 3))], 'openseadragon')
    assert '<script>alert' not in text and '<b>Dust' not in text
    assert '&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; &amp; co' in text
    renamed = dict(info, image=dict(info['image'], tiles='</script><x>/image_files/'))
    assert '</script><x>' not in viewer_page(renamed, 't', LEGEND, 'openseadragon')


def test_refusals(tmp_path, written):
    _, info = written
    image, mask = scan(), damage_mask()
    with pytest.raises(ValueError, match='palette has 2 colours'):
        write_deep_zoom(image, mask, PALETTE[:2], str(tmp_path), 'few_colours')
    with pytest.raises(ValueError, match='plain file name'):
        write_deep_zoom(image, mask, PALETTE, str(tmp_path), '../elsewhere')
    with pytest.raises(ValueError, match='uint8 of the image size'):
        write_deep_zoom(image, mask[:10], PALETTE, str(tmp_path), 'small_mask')
    write_deep_zoom(image[:40, :60], mask[:40, :60], PALETTE, str(tmp_path), 'twice')
    with pytest.raises(FileExistsError):
        write_deep_zoom(image[:40, :60], mask[:40, :60], PALETTE, str(tmp_path), 'twice')
    with pytest.raises(ValueError, match='relative path'):
        viewer_page(info, 't', LEGEND, str(tmp_path / 'openseadragon'))


def test_mean_shrink_fades_hairlines_but_keeps_their_colour(tmp_path):
    info = write_deep_zoom(scan(), damage_mask(), PALETTE, str(tmp_path), 'mean',
                           damage_shrink='mean')
    half = tmp_path / info['damage']['tiles'] / str(info['levels'] - 2) / '0_0.png'
    pixel = cv2.imread(str(half), cv2.IMREAD_UNCHANGED)[100, 101 // 2]
    assert abs(int(pixel[3]) - 128) <= 1  # half the 2 x 2 block is the line
    assert (np.abs(pixel[2::-1].astype(int) - PALETTE[3]) <= 2).all()  # not darkened
