"""The README and the guides in docs/: every relative link and image resolves, and
the README stays an entry point (at most 250 lines)."""
import re

import pytest

from conftest import REPO

DOCS = [REPO / 'README.md', REPO / 'data' / 'README.md',
        *sorted((REPO / 'docs').glob('*.md'))]
# [text](target) and ![alt](target), the target up to a space or ')'
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')


def relative_links(path):
    text = path.read_text(encoding='utf-8')
    text = re.sub(r'```.*?```', '', text, flags=re.S)  # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r'[a-z][a-z0-9+.-]*:', target) or target.startswith('#'):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        yield target.split('#', 1)[0]


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    links = list(relative_links(doc))
    missing = [t for t in links if not (doc.parent / t).exists()]
    assert not missing, f'{doc.relative_to(REPO)} links to missing files: {missing}'


def test_the_links_are_found():
    """The checker sees the README's links to the guides (it would pass on no links)."""
    links = set(relative_links(REPO / 'README.md'))
    assert {'docs/applying.md', 'docs/study.md', 'docs/sharing.md'} <= links


def test_readme_is_an_entry_point():
    lines = (REPO / 'README.md').read_text(encoding='utf-8').count('\n')
    assert lines <= 250, f'README.md has {lines} lines: move details to a guide in docs/'
