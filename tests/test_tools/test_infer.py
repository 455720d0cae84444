"""tools/infer.py: every output written and consistent, bad inputs named,
a checkpoint that does not fit stops it (and every other tool) with the keys."""
import csv
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PY, REPO, run_tool

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_mismatched_checkpoint, write_work_dir  # noqa: E402

INFER = REPO / 'tools' / 'infer.py'


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return write_work_dir(tmp_path_factory.mktemp('infer'))


@pytest.fixture(scope='module')
def scans(tiny_demo_root, tmp_path_factory):
    """A JPEG (RGB), a PNG (RGBA) and a 16-bit grey TIFF of other sizes, and a
    text file that is not an image."""
    folder = tmp_path_factory.mktemp('scans')
    src = sorted((tiny_demo_root / 'img_dir' / 'train').glob('*.png'))
    rgb = [cv2.imread(str(p)) for p in src[:3]]
    cv2.imwrite(str(folder / 'photo.jpg'), rgb[0])
    cv2.imwrite(str(folder / 'print.png'),
                cv2.cvtColor(cv2.resize(rgb[1], (150, 110)), cv2.COLOR_BGR2BGRA))
    grey16 = cv2.cvtColor(cv2.resize(rgb[2], (90, 140)), cv2.COLOR_BGR2GRAY).astype(np.uint16)
    cv2.imwrite(str(folder / 'manuscript.tif'), grey16 * 257)
    (folder / 'notes.txt').write_text('not an image')
    return folder


def test_infer_writes_masks_overlays_summary_and_page(work_dir, scans, tmp_path):
    out = tmp_path / 'infer'
    proc = run_tool([PY, INFER, scans, '--model', work_dir, '--out', out])
    assert 'notes.txt' in proc.stderr and 'left out' in proc.stderr
    assert re.search(r'3 of 3 images segmented .* peak RSS \d+ MiB', proc.stdout)
    summary = json.loads((out / 'summary.json').read_text())
    classes = summary['classes']
    assert classes == ['Clean', 'Damage']
    rows = {Path(r['file']).name: r for r in summary['images']}
    assert set(rows) == {'photo.jpg', 'print.png', 'manuscript.tif'}
    for name, row in rows.items():
        source = cv2.imread(str(scans / name), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / row['mask']), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.shape == source.shape[:2], name
        assert (row['width'], row['height']) == (source.shape[1], source.shape[0])
        counts = np.bincount(mask.ravel(), minlength=len(classes))
        assert len(counts) == len(classes)
        for cls, n in zip(classes, counts):
            assert row['pixels'][cls] == n
            assert row['percent'][cls] == pytest.approx(100 * n / mask.size)
        assert cv2.imread(str(out / row['overlay'])).shape[1] > source.shape[1]
    with open(out / 'summary.csv', newline='') as f:
        table = list(csv.DictReader(f))
    assert {Path(r['file']).name for r in table} == set(rows)
    assert all(float(r['Clean %']) + float(r['Damage %']) == pytest.approx(100, abs=1e-3)
               for r in table)
    page = (out / 'index.html').read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    # per image: page link (thumbnail), thumbnail, page, mask; and the provenance record
    assert len(refs) == 3 * 4 + 1
    assert all((out / ref).is_file() for ref in refs), refs


def test_non_empty_output_needs_force(work_dir, scans, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    proc = run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out', out],
                    check=False)
    assert proc.returncode != 0 and 'not empty' in proc.stderr and '--force' in proc.stderr
    run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out', out, '--force'])
    assert (out / 'keep.txt').read_text() == 'mine'  # only our outputs are replaced
    assert (out / 'masks' / 'photo.png').is_file()


def test_unreadable_input_stops_or_is_skipped_and_listed(work_dir, scans, tmp_path):
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
    args = [PY, INFER, scans / 'photo.jpg', bad, '--model', work_dir]
    proc = run_tool(args + ['--out', tmp_path / 'a'], check=False)
    assert proc.returncode != 0 and f'cannot read {bad}' in proc.stderr
    assert '--skip-bad skips unreadable files' in proc.stderr
    assert 'mask' not in proc.stderr  # the training loader's advice does not apply here
    proc = run_tool(args + ['--out', tmp_path / 'b', '--skip-bad'])
    summary = json.loads((tmp_path / 'b' / 'summary.json').read_text())
    status = {Path(r['file']).name: r['status'] for r in summary['images']}
    assert status['photo.jpg'] == 'ok' and status['broken.png'].startswith('skipped: ')
    assert '1 of 2 images segmented' in proc.stdout


def test_usage_mistakes_are_one_line_and_write_nothing(work_dir, scans, tmp_path):
    missing = tmp_path / 'scnas'
    proc = run_tool([PY, INFER, missing, '--model', work_dir, '--out', tmp_path / 'a'],
                    check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'infer: {missing}: no such file or folder' in proc.stderr
    full = tmp_path / 'full'
    full.mkdir()
    (full / 'mine.txt').write_text('x')
    proc = run_tool([PY, INFER, scans, '--model', work_dir, '--out', full], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr and 'not empty' in proc.stderr
    # a model that does not load leaves no output folder behind for the rerun to trip on
    proc = run_tool([PY, INFER, scans, '--model', tmp_path / 'no_model', '--out',
                     tmp_path / 'b'], check=False)
    assert proc.returncode == 2 and 'no such work dir or config file' in proc.stderr
    assert not (tmp_path / 'b').exists() and not (tmp_path / 'a').exists()


def test_same_stem_twice_keeps_both(work_dir, scans, tmp_path):
    jpg = cv2.imread(str(scans / 'photo.jpg'))
    cv2.imwrite(str(tmp_path / 'photo.png'), jpg)
    run_tool([PY, INFER, scans / 'photo.jpg', tmp_path / 'photo.png', '--model', work_dir,
              '--out', tmp_path / 'out'])
    masks = sorted(p.name for p in (tmp_path / 'out' / 'masks').iterdir())
    assert masks == ['photo.png', 'photo_png.png']


def tool_command(tool, checkpoint, work_dir, scans, tmp_path, tiny_demo_root):
    """The command line of each tool that loads a trained model, on ``checkpoint``."""
    config = work_dir / 'tiny_convnext.py'
    image = scans / 'photo.jpg'
    analysis = REPO / 'tools' / 'analysis_tools'
    if tool == 'compare':
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        (run_dir / 'tiny_convnext.py').write_text(config.read_text())
        (run_dir / 'best_mIoU_epoch_1.pth').write_bytes(checkpoint.read_bytes())
    data = [f'{k}_dataloader.dataset.data_root={tiny_demo_root}' for k in ('val', 'test')]
    commands = {
        'infer': [INFER, image, '--model', config, '--checkpoint', checkpoint, '--out',
                  tmp_path / 'o'],
        'cam': [analysis / 'visualization_cam.py', config, checkpoint, image, '--out',
                tmp_path],
        'attention': [analysis / 'visualize_attention.py', config, checkpoint, image, '--out',
                      tmp_path],
        'compare': [analysis / 'compare.py', tmp_path / 'run', '--out', tmp_path / 'c',
                    '--no-flops', '--n-boot', '100', '--cfg-options'] + data,
        'test': [REPO / 'tools' / 'test.py', config, checkpoint, '--work-dir', tmp_path / 'w',
                 '--cfg-options'] + data + ['test_dataloader.num_workers=0'],
    }
    return [PY] + commands[tool]


@pytest.mark.parametrize('tool', ['infer', 'cam', 'attention', 'compare', 'test'])
def test_mismatched_checkpoint_stops_every_tool(tool, work_dir, scans, tmp_path,
                                                tiny_demo_root):
    bad = tmp_path / 'bad.pth'
    key = write_mismatched_checkpoint(work_dir, bad)
    proc = run_tool(tool_command(tool, bad, work_dir, scans, tmp_path, tiny_demo_root),
                    check=False)
    assert proc.returncode != 0
    assert 'does not match the model' in proc.stderr, proc.stderr[-2000:]
    assert key in proc.stderr and 'decode_head.renamed_weight' in proc.stderr


@pytest.mark.parametrize('tool', ['infer', 'cam', 'attention', 'compare', 'test'])
def test_checkpoint_without_meta_works_in_every_tool(tool, work_dir, scans, tmp_path,
                                                     tiny_demo_root):
    import torch
    bare = tmp_path / 'bare.pth'
    state = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)['state_dict']
    torch.save(dict(state_dict=state), bare)  # no meta, no message hub
    proc = run_tool(tool_command(tool, bare, work_dir, scans, tmp_path, tiny_demo_root),
                    check=False)
    if tool == 'attention':  # loads, then says a ConvNeXt has no attention to show
        assert proc.returncode != 0 and 'meta' not in proc.stderr, proc.stderr[-2000:]
        assert 'attention' in proc.stderr.splitlines()[-1], proc.stderr[-2000:]
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]


def png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header declares ``width`` x ``height`` (its data is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr)
                     + chunk(b'IDAT', zlib.compress(b'\0' * 1000)) + chunk(b'IEND', b''))


def test_images_above_the_pixel_limit_are_refused_before_decoding(work_dir, scans, tmp_path):
    bomb = tmp_path / 'bomb.png'
    png_header_only(bomb, 32000, 32000)
    assert bomb.stat().st_size < 2000
    proc = run_tool([PY, INFER, bomb, '--model', work_dir, '--out', tmp_path / 'a'],
                    check=False, timeout=120)
    assert proc.returncode != 0
    assert (f'{bomb}: 32000x32000 = 1024 Mpx, above the limit of 250 Mpx; raise it with '
            '--max-pixels') in proc.stderr
    # skipped and listed with --skip-bad; the run's memory stays that of the model
    proc = run_tool([PY, INFER, bomb, scans / 'photo.jpg', '--model', work_dir, '--out',
                     tmp_path / 'b', '--skip-bad'], timeout=120)
    assert '1 of 2 images segmented' in proc.stdout
    peak = float(re.search(r'peak RSS (\d+) MiB', proc.stdout).group(1))
    assert peak < 2500  # decoding 32000 x 32000 x 3 alone would take 2900 MiB
    status = {Path(r['file']).name: r['status'] for r in json.loads(
        (tmp_path / 'b' / 'summary.json').read_text())['images']}
    assert status['bomb.png'].startswith('skipped: ') and 'Mpx' in status['bomb.png']
    # the limit is the user's to set: a lower one refuses the small photo too
    proc = run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out',
                     tmp_path / 'c', '--max-pixels', '100'], check=False)
    assert proc.returncode != 0 and 'above the limit of 0 Mpx' in proc.stderr


def test_a_config_without_weights_is_refused_unless_random_weights_are_asked_for(
        work_dir, scans, tmp_path):
    config = next(work_dir.glob('*.py'))
    args = [PY, INFER, scans / 'photo.jpg', '--model', config]
    proc = run_tool(args + ['--out', tmp_path / 'a'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'--model {config} is a config: give its weights with --checkpoint' in proc.stderr
    assert not (tmp_path / 'a').exists()
    run_tool(args + ['--out', tmp_path / 'b', '--random-weights'])
    assert (tmp_path / 'b' / 'masks' / 'photo.png').is_file()


def test_a_stride_larger_than_the_window_is_refused_with_the_values(work_dir, scans, tmp_path):
    proc = run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out',
                     tmp_path / 'a', '--cfg-options', 'model.test_cfg.stride=(200,200)'],
                    check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert re.search(r'test_cfg.stride \(200, 200\) must be at least 1 and at most the window '
                     r'test_cfg.crop_size \(\d+, \d+\)', proc.stderr)


def test_names_that_spreadsheets_or_browsers_misread_are_written_safely(work_dir, scans,
                                                                       tmp_path):
    from urllib.parse import unquote
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('=HYPERLINK(1).png', 'scan #2?.png', '+50% damage.png'):
        (folder / name).write_bytes((scans / 'print.png').read_bytes())
    out = tmp_path / 'out'
    run_tool([PY, INFER, '=HYPERLINK(1).png', 'scan #2?.png', '+50% damage.png', '--model',
              work_dir, '--out', out], cwd=folder)
    with open(out / 'summary.csv', newline='') as f:
        files = [row['file'] for row in csv.DictReader(f)]
    # formula-like cells are text for a spreadsheet; the JSON keeps the names as they are
    assert files == ["'=HYPERLINK(1).png", 'scan #2?.png', "'+50% damage.png"]
    assert [r['file'] for r in json.loads((out / 'summary.json').read_text())['images']] == [
        '=HYPERLINK(1).png', 'scan #2?.png', '+50% damage.png']
    page = (out / 'index.html').read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(refs) == 13 and not any(c in ref for ref in refs for c in '#? ')
    assert all((out / unquote(ref)).is_file() for ref in refs), refs


def test_a_multi_page_tiff_is_refused_never_read_as_its_first_page(work_dir, scans, tmp_path):
    from PIL import Image
    pages = [Image.open(scans / 'photo.jpg').convert('RGB'),
             Image.open(scans / 'print.png').convert('RGB')]
    stack = tmp_path / 'stack.tif'
    pages[0].save(stack, save_all=True, append_images=pages[1:])
    proc = run_tool([PY, INFER, stack, '--model', work_dir, '--out', tmp_path / 'a'],
                    check=False)
    assert proc.returncode != 0
    assert f'{stack} holds 2 pages; only single-page TIFFs are read' in proc.stderr
    run_tool([PY, INFER, stack, scans / 'manuscript.tif', '--model', work_dir, '--out',
              tmp_path / 'b', '--skip-bad'])
    status = {Path(r['file']).name: r['status'] for r in json.loads(
        (tmp_path / 'b' / 'summary.json').read_text())['images']}
    assert status['stack.tif'].startswith('skipped: ') and status['manuscript.tif'] == 'ok'


def test_one_run_at_a_time_per_output_folder_and_a_killed_run_leaves_no_lock(
        work_dir, scans, tmp_path):
    import signal
    import subprocess
    out = tmp_path / 'out'
    run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out', out])
    first = (out / 'masks' / 'photo.png').read_bytes()
    # another process holds the folder (as a running infer does), then is killed -9
    holder = subprocess.Popen([PY, '-c', (
        'import fcntl, os, sys, time\n'
        f'fd = os.open({str(out / ".infer.lock")!r}, os.O_RDWR)\n'
        'fcntl.flock(fd, fcntl.LOCK_EX); print("held", flush=True); time.sleep(120)')],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'
    proc = run_tool([PY, INFER, scans / 'print.png', '--model', work_dir, '--out', out,
                     '--force'], check=False)
    assert proc.returncode == 2 and f'another run is writing to {out}' in proc.stderr
    assert (out / 'masks' / 'photo.png').read_bytes() == first  # nothing was deleted
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    run_tool([PY, INFER, scans / 'print.png', '--model', work_dir, '--out', out, '--force'])
    assert sorted(p.name for p in (out / 'masks').iterdir()) == ['print.png']


def test_outputs_that_are_links_are_refused_before_anything_is_written(work_dir, scans,
                                                                      tmp_path):
    out = tmp_path / 'out'
    run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out', out])
    elsewhere = tmp_path / 'elsewhere'
    (out / 'masks').rename(elsewhere)
    (out / 'masks').symlink_to(elsewhere)
    proc = run_tool([PY, INFER, scans / 'photo.jpg', '--model', work_dir, '--out', out,
                     '--force'], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'{out / "masks"} is a symbolic link' in proc.stderr
    assert (elsewhere / 'photo.png').is_file()


@pytest.mark.e2e
def test_a_killed_collection_resumes_to_the_outputs_of_an_uninterrupted_run(
        work_dir, tiny_demo_root, tmp_path):
    """SIGKILL part-way through 20 images, then --resume: every output file equals an
    uninterrupted run's, byte for byte, and only the unfinished images are redone."""
    import signal
    import subprocess
    import time
    folder = tmp_path / 'collection'
    folder.mkdir()
    sources = sorted((tiny_demo_root / 'img_dir').rglob('*.png'))
    for k in range(20):
        image = cv2.imread(str(sources[k % len(sources)]))
        side = 64 + 8 * k
        cv2.imwrite(str(folder / f'scan_{k:02d}.png'), cv2.resize(image, (side, side - 8)))
    args = [PY, INFER, folder, '--model', work_dir]
    killed = tmp_path / 'killed'
    proc = subprocess.Popen([*map(str, args), '--out', str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / 'records'
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if records.is_dir() and len(list(records.glob('*.json'))) >= 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(records.glob('*.json')))
    assert 4 <= done < 20, done
    assert not (killed / 'summary.json').exists()
    resumed = run_tool([*args, '--out', killed, '--resume'])
    assert f'resumed: {done} of 20 images were already done' in resumed.stdout
    whole = tmp_path / 'whole'
    run_tool([*args, '--out', whole])
    expected = sorted(p.relative_to(whole) for p in whole.rglob('*') if p.is_file())
    assert sorted(p.relative_to(killed) for p in killed.rglob('*') if p.is_file()) == expected
    assert len([p for p in expected if p.parts[0] == 'masks']) == 20
    started = re.compile(rb'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00')  # each run's own
    for rel in expected:
        assert started.sub(b'T', (killed / rel).read_bytes()) == \
            started.sub(b'T', (whole / rel).read_bytes()), rel
    # another model or other options than the run's own: refused, naming what changed
    proc = run_tool([*args, '--out', killed, '--resume', '--window-batch', '1'], check=False)
    assert proc.returncode == 2 and 'made with another options' in proc.stderr
    proc = run_tool([*args, '--out', tmp_path / 'none', '--resume'], check=False)
    assert proc.returncode == 2 and 'holds no run of tools/infer.py' in proc.stderr


def test_a_name_too_long_for_the_file_system_is_shortened_and_kept_unique(work_dir, scans,
                                                                         tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    # 252-byte names: the stem with '.json.partial' (a record being written) passes 255
    names = ['d' * 246 + '_a.png', 'd' * 246 + '_b.png']
    for name in names:
        (folder / name).write_bytes((scans / 'print.png').read_bytes())
    out = tmp_path / 'out'
    run_tool([PY, INFER, *[folder / n for n in names], '--model', work_dir, '--out', out])
    rows = json.loads((out / 'summary.json').read_text())['images']
    masks = [row['mask'] for row in rows]
    assert len(set(masks)) == 2 and all(len(Path(m).name.encode()) <= 255 for m in masks)
    assert all((out / m).is_file() for m in masks)
    assert [Path(row['file']).name for row in rows] == names  # the source names stay


def test_a_file_that_cannot_be_written_is_named_with_the_reason(tmp_path):
    from artseg_mm.visualization.scan_report import ScanReport
    report = ScanReport(str(tmp_path / 'out'), ['Clean', 'Damage'],
                        [(0, 0, 0), (255, 0, 0)])
    name = 'x' * 300  # longer than a file system takes
    with pytest.raises(OSError, match=rf'could not write .*masks/{name}.png: File name too '
                                      'long'):
        report._write(f'masks/{name}.png', np.zeros((4, 4), np.uint8))


def test_transparent_pixels_tiny_images_and_low_bit_files(work_dir, scans, tmp_path):
    """A cut-out's transparent pixels are not segmented (255 in the mask, out of
    the shares); an image under the encoder's stride is segmented; a 16-bit file
    with 12-bit data and no declaration is noted in its record."""
    folder = tmp_path / 'in'
    folder.mkdir()
    photo = cv2.imread(str(scans / 'photo.jpg'))
    cutout = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    cutout[:, :40, 3] = 0
    cv2.imwrite(str(folder / 'cutout.png'), cutout)
    cv2.imwrite(str(folder / 'tiny.png'), photo[:12, :9])
    cv2.imwrite(str(folder / 'dark.tif'), photo.astype(np.uint16) * 16)  # 12-bit data
    out = tmp_path / 'out'
    proc = run_tool([PY, INFER, folder, '--model', work_dir, '--out', out])
    assert '3 of 3 images segmented' in proc.stdout
    assert 'fill only the low bits' in proc.stdout + proc.stderr
    rows = {Path(r['file']).name: r for r in
            json.loads((out / 'summary.json').read_text())['images']}
    row = rows['cutout.png']
    mask = cv2.imread(str(out / row['mask']), cv2.IMREAD_UNCHANGED)
    assert (mask[:, :40] == 255).all() and (mask[:, 40:] < 2).all()
    assert row['transparent_pixels'] == 40 * mask.shape[0]
    assert sum(row['pixels'].values()) == mask.size - row['transparent_pixels']
    assert sum(row['percent'].values()) == pytest.approx(100)
    overlay = cv2.imread(str(out / row['overlay']))
    assert overlay is not None and overlay.shape[1] > mask.shape[1]
    assert cv2.imread(str(out / rows['tiny.png']['mask']), cv2.IMREAD_UNCHANGED).shape == (12, 9)
    assert any('fill only the low bits' in n for n in rows['dark.tif']['notes'])
    with open(out / 'summary.csv', newline='') as f:
        table = {Path(r['file']).name: r for r in csv.DictReader(f)}
    assert int(table['cutout.png']['transparent px']) == row['transparent_pixels']
    assert int(table['tiny.png']['transparent px']) == 0
