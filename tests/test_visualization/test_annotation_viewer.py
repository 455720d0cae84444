"""The page that shows a Web Annotation page over its image with OpenSeadragon and
Annotorious, from disk (artseg_mm.visualization.annotation_viewer)."""
import json
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from artseg_mm.interchange.exports import to_iiif
from artseg_mm.visualization.annotation_viewer import (ANNOTORIOUS_SCRIPT, ANNOTORIOUS_STYLE,
                                                       annotation_page_viewer, class_table,
                                                       copy_annotorious_assets, main,
                                                       svg_extent)
from artseg_mm.visualization.deep_zoom import copy_viewer_assets

WIDTH, HEIGHT = 60, 40
NASTY = 'Dust</script><script>alert(1)</script>'
CLASSES = ['Clean', 'Material loss', NASTY]


def mask() -> np.ndarray:
    """A Material-loss square with a hole, and a region of the class with a nasty name."""
    array = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    array[5:25, 5:25] = 1
    array[10:15, 10:15] = 0
    array[30:38, 40:58] = 2
    return array


class PageParts(HTMLParser):
    """The src/href of every element, the JSON script blocks by id, and the title."""

    def __init__(self):
        super().__init__()
        self.links, self.blocks, self.title = [], {}, ''
        self._block, self._in_title = None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ('src', 'href'):
            if attrs.get(name):
                self.links.append(attrs[name])
        if tag == 'script' and attrs.get('type') == 'application/json':
            self._block = attrs['id']
            self.blocks[self._block] = ''
        self._in_title = tag == 'title'

    def handle_endtag(self, tag):
        self._block = None
        self._in_title = False

    def handle_data(self, data):
        if self._block:
            self.blocks[self._block] += data
        if self._in_title:
            self.title += data


@pytest.fixture
def written(tmp_path):
    """A page saved in ``tmp_path/report`` with the image one folder up and the
    two viewers copied next to the page."""
    Image.new('RGB', (WIDTH, HEIGHT), (120, 100, 80)).save(tmp_path / 'scan #1.png')
    report = tmp_path / 'report'
    report.mkdir()
    osd = copy_viewer_assets(str(report))
    annotorious = copy_annotorious_assets(str(report))
    page = to_iiif(mask(), CLASSES, name='scan #1')
    html = annotation_page_viewer(page, '../scan #1.png', WIDTH, HEIGHT, osd, annotorious,
                                  title='Scan <b>&</b> damage')
    (report / 'view.html').write_text(html, encoding='utf-8')
    return report, page, html


def parse(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    return parts


def test_page_links_only_existing_relative_files(written):
    report, _, html = written
    parts = parse(html)
    config = json.loads(parts.blocks['viewer-config'])
    links = parts.links + [config['image']]
    assert any(link.endswith(ANNOTORIOUS_SCRIPT) for link in links)
    assert any(link.endswith(ANNOTORIOUS_STYLE) for link in links)
    assert any(link.endswith('openseadragon.min.js') for link in links)
    for link in links:
        assert '://' not in link and not link.startswith('/'), link
        assert (report / unquote(link)).is_file(), link
    # OpenSeadragon's buttons are looked up under prefixUrl
    assert (report / unquote(config['prefixUrl']) / 'zoomin_rest.png').is_file()


def test_page_holds_the_annotation_page_unchanged(written):
    _, page, html = written
    parts = parse(html)
    assert json.loads(parts.blocks['annotation-page']) == page
    config = json.loads(parts.blocks['viewer-config'])
    assert config['classes'] == ['Material loss', NASTY]
    assert set(config['classOf']) == {item['id'] for item in page['items']}
    assert (config['width'], config['height']) == (WIDTH, HEIGHT)


def test_title_and_class_names_are_escaped(written):
    _, _, html = written
    parts = parse(html)
    assert parts.title == 'Scan <b>&</b> damage'
    assert '<b>' not in html
    # the nasty class name cannot end a script block or start one of its own
    assert html.count('</script>') == html.count('<script')
    assert html.count('<script') == 5  # two JSON blocks, two libraries, the page's code
    assert 'alert(1)' in html  # still there, as escaped text


def test_annotations_are_in_image_pixels(written):
    _, page, _ = written
    extents = [svg_extent(item['target']['selector']['value']) for item in page['items']]
    assert (5, 5, 25, 25) in extents  # pixel edges of the square rows/cols 5..24
    assert (40, 30, 58, 38) in extents


def test_outlines_outside_the_image_are_refused(written):
    _, page, _ = written
    with pytest.raises(ValueError, match='outside the 30 x 20 image'):
        annotation_page_viewer(page, 'scan.png', 30, 20, 'openseadragon', 'annotorious', 't')


@pytest.mark.parametrize('broken, message', [
    ({'type': 'Annotation'}, 'AnnotationPage'),
    ({'type': 'AnnotationPage', 'items': [{'type': 'Annotation', 'target': 'x'}]}, 'no id'),
    ({'type': 'AnnotationPage', 'items': [{'type': 'Annotation', 'id': 'a', 'target': 'x'}]},
     'no selector'),
])
def test_pages_annotorious_cannot_show_are_refused(broken, message):
    with pytest.raises(ValueError, match=message):
        annotation_page_viewer(broken, 'scan.png', 10, 10, 'openseadragon', 'annotorious', 't')


def test_absolute_paths_are_refused(written):
    _, page, _ = written
    with pytest.raises(ValueError, match='relative'):
        annotation_page_viewer(page, '/data/scan.png', WIDTH, HEIGHT, 'openseadragon',
                               'annotorious', 't')


def test_class_table_counts_annotations_per_class(written):
    _, page, _ = written
    names, _, counts = class_table(page['items'])
    assert names == ['Material loss', NASTY] and counts == [1, 1]


def test_copy_is_idempotent(tmp_path):
    assert copy_annotorious_assets(str(tmp_path)) == 'annotorious'
    script = tmp_path / 'annotorious' / ANNOTORIOUS_SCRIPT
    before = script.stat().st_mtime_ns
    assert copy_annotorious_assets(str(tmp_path)) == 'annotorious'
    assert script.stat().st_mtime_ns == before
    assert (tmp_path / 'annotorious' / 'LICENSE').is_file()


def test_command_line_writes_a_page_next_to_its_viewers(tmp_path, capsys):
    Image.new('RGB', (WIDTH, HEIGHT)).save(tmp_path / 'scan.png')
    (tmp_path / 'scan.iiif.json').write_text(json.dumps(to_iiif(mask(), CLASSES, name='scan')))
    out = tmp_path / 'pages' / 'scan.html'
    assert main([str(tmp_path / 'scan.iiif.json'), str(tmp_path / 'scan.png'),
                 '--out', str(out)]) == 0
    parts = parse(out.read_text(encoding='utf-8'))
    assert json.loads(parts.blocks['viewer-config'])['image'] == '../scan.png'
    for link in parts.links:
        assert (out.parent / unquote(link)).is_file(), link
    assert 'wrote' in capsys.readouterr().out
