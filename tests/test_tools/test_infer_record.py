"""tools/infer.py as a condition record: provenance, physical units, confidence,
colour masks, pages whose links resolve, subfolders mirrored, EXIF orientation."""
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import PY, REPO, run_tool

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402

INFER = REPO / 'tools' / 'infer.py'
DPI = 600


@pytest.fixture(scope='module')
def synthetic_work_dir(tmp_path_factory, tiny_demo_root):
    """A tiny work dir whose config trains on the (synthetic) demo data."""
    roots = {f'{split}_dataloader.dataset.data_root': str(tiny_demo_root)
             for split in ('train', 'val', 'test')}
    return write_work_dir(tmp_path_factory.mktemp('record'), cfg_options=roots)


@pytest.fixture(scope='module')
def collection(tiny_demo_root, tmp_path_factory):
    """A folder with a 600 dpi TIFF, a photo turned by its EXIF tag, and a
    subfolder holding a PNG without resolution and one in a deeper folder."""
    root = tmp_path_factory.mktemp('collection')
    src = [cv2.imread(str(p)) for p in sorted((tiny_demo_root / 'img_dir').rglob('*.png'))]
    cv2.imwrite(str(root / 'sheet.tif'), np.concatenate(src[:2], axis=1),
                [cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI, DPI,
                 cv2.IMWRITE_TIFF_YDPI, DPI])
    stored = Image.fromarray(cv2.cvtColor(src[2][:, :96], cv2.COLOR_BGR2RGB))  # 128 x 96
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(root / 'photo.jpg', exif=exif.tobytes(), quality=95)
    (root / 'box' / 'inner').mkdir(parents=True)
    cv2.imwrite(str(root / 'box' / 'page.png'), src[3])
    cv2.imwrite(str(root / 'box' / 'inner' / 'page.png'), src[4][:100])
    return root


@pytest.fixture(scope='module')
def report(synthetic_work_dir, collection, tmp_path_factory):
    out = tmp_path_factory.mktemp('report') / 'out'
    proc = run_tool([PY, INFER, collection, '--recursive', '--model', synthetic_work_dir,
                     '--out', out])
    return out, json.loads((out / 'summary.json').read_text()), proc


def test_provenance_names_the_model_and_warns_of_synthetic_training_data(
        synthetic_work_dir, report):
    import artseg_mm
    out, summary, proc = report
    provenance = summary['provenance']
    assert json.loads((out / 'provenance.json').read_text()) == provenance
    model = provenance['model']
    checkpoint = synthetic_work_dir / 'best_mIoU_epoch_1.pth'
    assert model['weights_sha256'] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert model['kind'] == 'work dir' and model['name'] == synthetic_work_dir.name
    assert model['classes'] == summary['classes'] == ['Clean', 'Damage']
    assert model['training_data']['synthetic'] is True
    assert any('synthetic' in line for line in model['limitations'])
    assert provenance['tools']['artseg_mm'] == artseg_mm.__version__
    assert provenance['options']['recursive'] == 'True'
    run = json.loads((out / 'run.json').read_text())
    assert provenance['date'] == run['started']
    for page in [out / 'index.html', *(out / 'pages').rglob('*.html')]:
        text = page.read_text()
        assert 'trained on synthetic demo images' in text, page
        assert model['weights_sha256'] in text, page
    assert 'trained on synthetic demo images' in proc.stderr


def test_a_real_data_model_gets_no_synthetic_banner(tmp_path, collection):
    work_dir = write_work_dir(tmp_path, cfg_options={
        f'{s}_dataloader.dataset.data_root': str(tmp_path / 'not_here')
        for s in ('train', 'val', 'test')})
    out = tmp_path / 'out'
    run_tool([PY, INFER, collection / 'box' / 'page.png', '--model', work_dir, '--out', out])
    provenance = json.loads((out / 'provenance.json').read_text())
    assert provenance['model']['training_data']['synthetic'] is False
    assert provenance['model']['training_data']['found'] is False
    assert 'trained on synthetic demo images' not in (out / 'index.html').read_text()


def test_subfolders_are_mirrored_in_every_output_folder(report, collection):
    out, summary, _ = report
    masks = sorted(r['mask'] for r in summary['images'])
    assert masks == ['masks/box/inner/page.png', 'masks/box/page.png', 'masks/photo.png',
                     'masks/sheet.png']
    for row in summary['images']:
        for key in ('mask', 'palette_mask', 'confidence', 'overlay', 'thumb', 'page'):
            assert (out / row[key]).is_file(), row[key]
    assert (out / 'records' / 'box' / 'inner' / 'page.json').is_file()


def test_without_recursive_subfolders_are_named_not_searched(synthetic_work_dir, collection,
                                                            tmp_path):
    proc = run_tool([PY, INFER, collection, '--model', synthetic_work_dir, '--out',
                     tmp_path / 'out'])
    assert '1 subfolders are not searched (--recursive searches them)' in proc.stderr
    assert str(collection / 'box') in proc.stderr
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert len(summary['images']) == 2


def test_palette_masks_hold_the_class_ids_and_confidence_is_bounded(report):
    out, summary, _ = report
    for row in summary['images']:
        ids = cv2.imread(str(out / row['mask']), cv2.IMREAD_UNCHANGED)
        palette_mask = Image.open(out / row['palette_mask'])
        assert palette_mask.mode == 'P'
        np.testing.assert_array_equal(np.asarray(palette_mask), ids)
        colours = np.asarray(palette_mask.getpalette()[:6]).reshape(2, 3)
        assert colours[1].any()  # Damage opens in a colour, not as near-black id 1
        confidence = cv2.imread(str(out / row['confidence']), cv2.IMREAD_UNCHANGED)
        assert confidence.dtype == np.uint8 and confidence.shape == ids.shape
        # two classes: a pixel predicted Clean has a Clean probability of at least 0.5
        assert confidence[ids == 0].min() >= 127
        review = row['review']
        damage = int((ids == 1).sum())
        assert review['damage_pixels'] == damage
        assert review['low_confidence_pixels'] == int(
            ((ids == 1) & (confidence < round(255 * review['threshold']))).sum())


def test_scale_from_the_file_or_the_command_line(report, synthetic_work_dir, collection,
                                                 tmp_path):
    out, summary, _ = report
    rows = {r['mask']: r for r in summary['images']}
    sheet = rows['masks/sheet.png']['measures']
    assert sheet['scale']['known'] and sheet['scale']['dpi'] == [DPI, DPI]
    damage = sheet['classes'].get('Damage')
    if damage:  # random weights may predict none; when they do, mm^2 follows the pixels
        assert damage['area_mm2'] == pytest.approx(damage['pixels'] / (DPI / 25.4) ** 2,
                                                   rel=1e-4)
    assert not rows['masks/box/page.png']['measures']['scale']['known']
    with open(out / 'summary.csv', newline='') as f:
        import csv
        scales = {Path(r['file']).name: r['scale'] for r in csv.DictReader(f)}
    assert scales['sheet.tif'] == '600 dpi (TIFF XResolution/ResolutionUnit)'
    assert scales['photo.jpg'] == 'scale unknown'
    given = tmp_path / 'given'
    run_tool([PY, INFER, collection / 'box' / 'page.png', '--dpi', '300', '--model',
              synthetic_work_dir, '--out', given])
    scale = json.loads((given / 'summary.json').read_text())['images'][0]['measures']['scale']
    assert scale['source'] == 'given' and scale['dpi'] == [300, 300]
    proc = run_tool([PY, INFER, collection, '--dpi', '0', '--model', synthetic_work_dir,
                     '--out', tmp_path / 'bad'], check=False)
    assert proc.returncode == 2 and '--dpi must be > 0' in proc.stderr


def test_every_link_of_every_page_resolves(report):
    from artseg_mm.visualization.report_pages import relative_links
    out, _, _ = report
    pages = [out / 'index.html', *(out / 'pages').rglob('*.html'),
             *(out / 'zoom').rglob('*.html')]
    assert len(pages) == 5
    for page in pages:
        links = relative_links(page.read_text())
        assert links, page
        for link in links:
            assert '://' not in link and not link.startswith('/'), (page, link)
            assert (page.parent / unquote(link)).is_file(), (page, link)


def test_exif_orientation_is_applied_only_when_asked(report, synthetic_work_dir, collection,
                                                     tmp_path):
    out, summary, _ = report
    photo = next(r for r in summary['images'] if r['mask'] == 'masks/photo.png')
    assert (photo['width'], photo['height']) == (96, 128)  # as stored
    assert any('EXIF orientation 6' in note for note in photo['notes'])
    turned = tmp_path / 'turned'
    run_tool([PY, INFER, collection / 'photo.jpg', '--apply-exif', '--model',
              synthetic_work_dir, '--out', turned])
    row = json.loads((turned / 'summary.json').read_text())['images'][0]
    assert (row['width'], row['height']) == (128, 96)  # as viewers show it
    assert any('applied (--apply-exif)' in note for note in row['notes'])
    mask = cv2.imread(str(turned / row['mask']), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (96, 128)


def test_display_orientation_matches_pillow():
    from PIL import ImageOps

    from artseg_mm.datasets.orientation import to_display_orientation
    array = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    for orientation in range(1, 9):
        image = Image.fromarray(array)
        image.getexif()[0x0112] = orientation
        expected = np.asarray(ImageOps.exif_transpose(image))
        np.testing.assert_array_equal(to_display_orientation(array, orientation), expected)
    with pytest.raises(ValueError, match='EXIF orientation must be 1-8'):
        to_display_orientation(array, 9)


def test_large_scans_get_a_zoomable_view(synthetic_work_dir, collection, tmp_path):
    out = tmp_path / 'out'
    run_tool([PY, INFER, collection / 'sheet.tif', '--zoom-from', '200', '--model',
              synthetic_work_dir, '--out', out])
    row = json.loads((out / 'summary.json').read_text())['images'][0]
    assert row['zoom'] == 'zoom/sheet.html'
    page = (out / row['zoom']).read_text()
    assert 'openseadragon.min.js' in page
    assert (out / 'zoom' / 'sheet' / 'image.dzi').is_file()
    assert (out / 'zoom' / 'sheet' / 'damage.dzi').is_file()
    assert 'zoomable view' in (out / row['page']).read_text()


def test_a_fine_tune_inherits_what_its_starting_weights_were_trained_on(
        synthetic_work_dir, collection, tmp_path):
    """Corrected masks of real-looking data do not make a demo model a real one."""
    checkpoint = synthetic_work_dir / 'best_mIoU_epoch_1.pth'
    options = {f'{s}_dataloader.dataset.data_root': str(tmp_path / 'corrected')
               for s in ('train', 'val', 'test')}
    fine_tuned = write_work_dir(tmp_path, cfg_options=dict(options, load_from=str(checkpoint)))
    out = tmp_path / 'out'
    run_tool([PY, INFER, collection / 'box' / 'page.png', '--model', fine_tuned, '--out', out])
    data = json.loads((out / 'provenance.json').read_text())['model']['training_data']
    assert data['data_root'] == str(tmp_path / 'corrected') and data['synthetic'] is True
    assert data['started_from']['weights'] == str(checkpoint)
    assert data['started_from']['training_data']['synthetic'] is True
    page = (out / 'index.html').read_text()
    assert 'trained on synthetic demo images' in page and f'fine-tuned from {checkpoint}' in page


def test_the_fine_tune_config_refuses_to_start_without_weights(tmp_path):
    config = REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo_finetune.py'
    proc = run_tool([PY, REPO / 'tools' / 'train.py', config, '--work-dir', tmp_path],
                    check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'fine-tunes trained weights: give them with --cfg-options load_from=' in proc.stderr
    proc = run_tool([PY, REPO / 'tools' / 'train.py', config, '--work-dir', tmp_path,
                     '--cfg-options', f'load_from={tmp_path / "none.pth"}'], check=False)
    assert proc.returncode == 2 and 'none.pth: no such checkpoint file' in proc.stderr
