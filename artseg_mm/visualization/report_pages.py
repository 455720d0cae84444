"""The tables and pages of an infer report: ``summary.csv``, ``index.html`` and
one printable page per image, each saying which model made it and what it
cannot do.

Why it exists: a share of "damage" read without its model, scale and
confidence misleads; every page carries the provenance, a banner for a model
trained on synthetic data, areas in physical units where the scan declares its
resolution ("scale unknown" where it does not) and the unsure regions to
review first. The pages use only relative links, so the folder can be moved.
"""
import csv
import html
import os.path as osp
from typing import List, Sequence
from urllib.parse import quote

# a cell a spreadsheet would read as a formula (CSV injection): =, +, -, @, tab, CR
_FORMULA_START = ('=', '+', '-', '@', '\t', '\r')
SCALE_UNKNOWN = 'scale unknown'

_STYLE = ('body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} '
          'td,th{border:1px solid #ccc;padding:4px;font-size:13px;text-align:right} '
          'td:first-child,th:first-child{text-align:left} '
          '.banner{background:#b00020;color:#fff;padding:.8em;font-weight:bold} '
          '.provenance{font-size:13px;color:#333;border-left:4px solid #888;padding-left:.8em} '
          '.swatch{display:inline-block;width:1em;height:1em;border:1px solid #000;'
          'vertical-align:middle;margin-right:.3em} '
          '@page{margin:12mm} '
          '@media print{.links{display:none} body{margin:0;font-size:11px} h1{font-size:16px}'
          ' h2{font-size:13px} .provenance{font-size:9px} td,th{font-size:10px}'
          ' img{max-width:100%;page-break-inside:avoid} ol,table{page-break-inside:avoid}'
          ' .banner{border:3px solid #b00020;color:#b00020;background:none}}')


def spreadsheet_safe(value):
    """A text cell that starts like a formula gets a leading apostrophe, the
    spreadsheets' own mark for 'text', so opening summary.csv runs nothing."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _number(value, digits: int = 2) -> str:
    return '' if value is None else f'{value:.{digits}f}'


def _class_measures(row: dict) -> dict:
    return (row.get('measures') or {}).get('classes') or {}


def _scale_text(row: dict) -> str:
    scale = (row.get('measures') or {}).get('scale') or {}
    if not scale.get('px_per_mm'):
        return SCALE_UNKNOWN
    x, y = scale['px_per_mm']
    dpi = f'{25.4 * x:.0f} dpi' if abs(x - y) < 1e-6 * x else \
        f'{25.4 * x:.0f} x {25.4 * y:.0f} dpi'
    return f"{dpi} ({scale.get('source')})"


def write_summary_csv(path: str, rows: Sequence[dict], classes: Sequence[str]) -> None:
    """One row per file: size, scale, transparent pixels, unsure damage, and per
    class pixels, % of opaque pixels, mm^2, regions and length (mm, thin classes).
    The provenance is the side file ``provenance.json`` (a CSV has no header)."""
    fields = ['file', 'status', 'width', 'height', 'scale', 'transparent px',
              'unsure damage %'] + [f'{c} px' for c in classes] + \
        [f'{c} %' for c in classes] + [f'{c} mm2' for c in classes] + \
        [f'{c} regions' for c in classes] + [f'{c} length mm' for c in classes]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            flat = {k: spreadsheet_safe(row.get(k, ''))
                    for k in ('file', 'status', 'width', 'height')}
            if 'pixels' in row:
                flat['scale'] = _scale_text(row)
                flat['transparent px'] = row.get('transparent_pixels', 0)
                share = (row.get('review') or {}).get('low_confidence_share')
                flat['unsure damage %'] = '' if share is None else f'{100 * share:.2f}'
                measures = _class_measures(row)
                for c in classes:
                    flat[f'{c} px'] = row['pixels'][c]
                    flat[f'{c} %'] = f"{row['percent'][c]:.4f}"
                    m = measures.get(c) or {}
                    flat[f'{c} mm2'] = _number(m.get('area_mm2'), 3)
                    flat[f'{c} regions'] = m.get('regions', '')
                    flat[f'{c} length mm'] = _number(m.get('length_mm'), 2)
            writer.writerow(flat)


def _url(rel: str) -> str:  # a file name may hold '#', '?', '%' or spaces
    return html.escape(quote(rel))


def _up(name_depth: int) -> str:
    return '../' * name_depth


def provenance_html(provenance: dict, up: str = '') -> str:
    """The banner (synthetic training data) and the provenance block of a page."""
    if not provenance:
        return ''
    esc = html.escape
    model = provenance.get('model') or {}
    data = model.get('training_data') or {}
    tools = provenance.get('tools') or {}
    parts = []
    if data.get('synthetic'):
        parts.append('<div class="banner">This model was trained on synthetic demo images. '
                     'Its masks show that the pipeline runs; they are not a damage '
                     'assessment of real scans.</div>')
    options = provenance.get('options') or {}
    settings = ', '.join(f'{esc(k)}={esc(str(v))}' for k, v in sorted(options.items()))
    lines = [
        f"<b>Model</b>: {esc(str(model.get('name')))} ({esc(str(model.get('kind')))}, "
        f"{esc(str(model.get('source')))}); weights sha256 "
        f"<code>{esc(str(model.get('weights_sha256')))}</code>",
        f"<b>Trained on</b>: {esc(_data_text(data))}",
        f"<b>Options that change masks</b>: {settings or 'none'}",
        f"<b>Made by</b>: artseg-mm {esc(str(tools.get('artseg_mm')))} (mmseg "
        f"{esc(str(tools.get('mmseg')))}, torch {esc(str(tools.get('torch')))}) on "
        f"{esc(str(provenance.get('date')))}",
        f'<b>Full record</b>: <a href="{up}provenance.json">provenance.json</a>']
    limits = ''.join(f'<li>{esc(line)}</li>' for line in model.get('limitations') or [])
    parts.append('<div class="provenance"><p>' + '<br>'.join(lines) + '</p>'
                 f"<p><b>What it cannot do</b> (from {esc(str(model.get('limitations_from')))})"
                 f':</p><ul>{limits}</ul></div>')
    return ''.join(parts)


def _data_text(data: dict) -> str:
    text = str(data.get('data_root') or 'data root not recorded')
    if data.get('synthetic'):
        text += ' (synthetic demo images)'
    if data.get('images'):
        text += '; images: ' + ', '.join(f'{k} {v}' for k, v in data['images'].items())
    if not data.get('found'):
        text += '; ' + str(data.get('note') or 'not on this machine')
    start = data.get('started_from')
    if start:
        text += f"; fine-tuned from {start['weights']}"
        if start.get('training_data'):
            text += f" (trained on {_data_text(start['training_data'])})"
    return text


def index_page(rows: Sequence[dict], classes: Sequence[str], provenance: dict) -> str:
    """Thumbnails, the summary table and the provenance of a whole run."""
    esc = html.escape
    head = ''.join(f'<th>{esc(c)} %</th>' for c in classes)
    body = []
    for row in rows:
        if row['status'] != 'ok':
            body.append(f'<tr><td></td><td>{esc(row["file"])}</td>'
                        f'<td colspan="{len(classes) + 3}">{esc(row["status"])}</td></tr>')
            continue
        shares = ''.join(f'<td>{row["percent"][c]:.2f}</td>' for c in classes)
        share = (row.get('review') or {}).get('low_confidence_share')
        links = [f'<a href="{_url(row["page"])}">page</a>',
                 f'<a href="{_url(row["mask"])}">mask</a>']
        if row.get('zoom'):
            links.append(f'<a href="{_url(row["zoom"])}">zoom</a>')
        body.append(
            f'<tr><td><a href="{_url(row["page"])}"><img src="{_url(row["thumb"])}" '
            f'height="96"></a></td><td>{esc(row["file"])}<br>{" | ".join(links)}</td>'
            f'<td>{row["width"]}x{row["height"]}</td><td>{esc(_scale_text(row))}</td>'
            f'<td>{"" if share is None else f"{100 * share:.1f}"}</td>{shares}</tr>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>artseg-mm '
            f'predictions</title><style>{_STYLE}</style></head><body>'
            '<h1>Predicted damage</h1>' + provenance_html(provenance) +
            '<p>Share of each image predicted as each class (%), of its opaque pixels '
            '(fully transparent pixels are not segmented); "unsure": the share of '
            'predicted damage whose top-class probability is below the threshold on each '
            'page. Every mask is a suggestion to be checked by a person.</p>'
            '<table><tr><th></th><th>file</th><th>size</th><th>scale</th>'
            f'<th>unsure damage %</th>{head}</tr>{"".join(body)}</table></body></html>')


def image_page(row: dict, classes: Sequence[str], palette, provenance: dict) -> str:
    """One image's printable page: overlay, legend with areas and regions, the
    unsure regions to review first, notes and the provenance."""
    esc = html.escape
    up = _up(row['page'].count('/'))
    measures = _class_measures(row)
    lines = []
    for idx, name in enumerate(classes):
        pixels = row['pixels'][name]
        if not pixels:
            continue
        m = measures.get(name) or {}
        r, g, b = palette[idx]
        swatch = (f'<span class="swatch" style="background:rgb({r},{g},{b})"></span>'
                  if any(palette[idx]) else '<span class="swatch"></span>')
        lines.append(
            f'<tr><td>{swatch}{esc(name)}{"" if any(palette[idx]) else " (not drawn)"}</td>'
            f'<td>{pixels:,}</td><td>{row["percent"][name]:.2f}</td>'
            f'<td>{_area_cell(m)}</td>'
            f'<td>{m.get("regions", "")}</td>'
            f'<td>{_number(m.get("largest_region_mm2"), 2)}</td>'
            f'<td>{_number(m.get("length_mm"), 1)}</td></tr>')
    review = row.get('review') or {}
    items = ''.join(f'<li>{_region_text(r)}</li>' for r in review.get('review_first') or [])
    share = review.get('low_confidence_share')
    review_html = ''
    if review:
        review_html = (
            f'<h2>Review first</h2><p>{review["low_confidence_pixels"]:,} of '
            f'{review["damage_pixels"]:,} damage pixels '
            f'({"n/a" if share is None else f"{100 * share:.1f}%"}) have a top-class '
            f'probability below {review["threshold"]:.2f} (confidence map: '
            f'<a href="{up}{_url(row["confidence"])}">{esc(row["confidence"])}</a>, '
            'value / 255 = probability).</p>' + (f'<ol>{items}</ol>' if items else ''))
    notes = ''.join(f'<li>{esc(n)}</li>' for n in row.get('notes') or [])
    links = [f'<a href="{up}index.html">all images</a>',
             f'<a href="{up}{_url(row["mask"])}">class-id mask</a>',
             f'<a href="{up}{_url(row["palette_mask"])}">colour mask</a>']
    if row.get('zoom'):
        links.append(f'<a href="{up}{_url(row["zoom"])}">zoomable view</a>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            f'<title>{esc(osp.basename(row["file"]))} — artseg-mm</title>'
            f'<style>{_STYLE}</style></head><body>'
            f'<h1>{esc(row["file"])}</h1><p class="links">{" | ".join(links)}</p>'
            + provenance_html(provenance, up) +
            f'<p><img src="{up}{_url(row["overlay"])}" style="max-width:100%"></p>'
            f'<p>{row["width"]}x{row["height"]} px; {_scale_sentence(row)}</p>'
            '<table><tr><th>class</th><th>pixels</th><th>% of image</th><th>cm²</th>'
            '<th>regions</th><th>largest (mm²)</th><th>length (mm)</th></tr>'
            f'{"".join(lines)}</table>{review_html}'
            + (f'<h2>Notes</h2><ul>{notes}</ul>' if notes else '') + '</body></html>')


def _area_cell(measure: dict) -> str:
    if not measure:
        return ''
    return _number(measure.get('area_cm2'), 3) or SCALE_UNKNOWN


def _region_text(region: dict) -> str:
    area = '' if region.get('area_mm2') is None else f" ({region['area_mm2']:.1f} mm²)"
    return (f"{html.escape(region['predicted'])}: {region['pixels']:,} px{area} at "
            f"x={region['x']}, y={region['y']} ({region['width']}x{region['height']} px), "
            f"mean confidence {region['mean_confidence']:.2f}")


def _scale_sentence(row: dict) -> str:
    scale = (row.get('measures') or {}).get('scale') or {}
    if not scale.get('px_per_mm'):
        return html.escape(scale.get('note') or SCALE_UNKNOWN)
    note = f" — {scale['note']}" if scale.get('note') else ''
    return html.escape(f'scale: {_scale_text(row)}{note}')


def relative_links(page_html: str) -> List[str]:
    """The href/src targets of a page (for checks that every link resolves)."""
    import re
    return [html.unescape(m) for m in re.findall(r'(?:href|src)="([^"]+)"', page_html)]
