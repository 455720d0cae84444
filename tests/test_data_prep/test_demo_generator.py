"""The demo-data generator and its CLI (tools/misc/make_demo_data.py)."""
import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from artseg_mm.data_prep import demo_generator
from artseg_mm.data_prep.demo_damage import DAMAGE_RENDERERS
from artseg_mm.data_prep.demo_generator import MATERIALS, generate_demo_dataset, render_sample
from artseg_mm.datasets.artefact_classes import FULL_CLASSES
from conftest import PY, REPO, run_tool
SMALL = dict(num_images=6, num_val=2, size=64, progress=False)


def run_cli(argv):
    """tools/misc/make_demo_data.py in a subprocess: (exit code, stdout, stderr)."""
    proc = run_tool([PY, REPO / 'tools' / 'misc' / 'make_demo_data.py', *argv], check=False)
    return proc.returncode, proc.stdout, proc.stderr


def digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob('*')) if p.is_file()}


def test_layout_and_masks(tmp_path):
    root = tmp_path / 'demo'
    assert generate_demo_dataset(root, seed=0, **SMALL) == 'written'
    for split, n in (('train', 4), ('val', 2)):
        images = sorted((root / 'img_dir' / split).glob('*.png'))
        masks = sorted((root / 'ann_dir' / split).glob('*.png'))
        assert [p.name for p in images] == [p.name for p in masks] and len(images) == n
        with open(root / 'meta' / f'{split}.csv', newline='') as f:
            rows = list(csv.DictReader(f))
        assert [r['id'] + '.png' for r in rows] == [p.name for p in images]
        for row, image, mask in zip(rows, images, masks):
            img = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
            ann = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
            assert img.shape == (64, 64, 3) and ann.shape == (64, 64) and ann.dtype == np.uint8
            assert set(np.unique(ann).tolist()) <= set(range(16)) | {255}
            assert ((ann > 0) & (ann < 255)).any(), f'{mask} has no damage'
            assert row['material'] in MATERIALS and row['content'] and row['type']
            assert row['transform'] == 'none' and row['source_width'] == '64'
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['label_mode_on_disk'] == 'full' and meta['classes'] == list(FULL_CLASSES)
    assert meta['files'] == {k: v for k, v in digests(root).items() if k != 'meta.json'}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    generate_demo_dataset(tmp_path / 'a', seed=5, **SMALL)
    generate_demo_dataset(tmp_path / 'b', seed=5, **SMALL)
    generate_demo_dataset(tmp_path / 'c', seed=6, **SMALL)
    assert digests(tmp_path / 'a') == digests(tmp_path / 'b')
    assert digests(tmp_path / 'a')['img_dir/train/demo_0000.png'] != \
        digests(tmp_path / 'c')['img_dir/train/demo_0000.png']


def test_every_damage_class_and_border_is_drawn_with_contrast():
    seen = set()
    damage_fraction = []
    for index in range(12):
        rng = np.random.default_rng([0, index])
        image, mask, _, _ = render_sample(rng, 128, MATERIALS[index % 4])
        seen |= set(np.unique(mask).tolist())
        damaged = (mask > 0) & (mask < 255)
        clean = mask == 0
        damage_fraction.append(damaged.mean())
        # Damage must be visible: its pixels differ from the clean ones on average.
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        assert abs(gray[damaged].mean() - gray[clean].mean()) > 3 or \
            gray[damaged].std() > gray[clean].std()
    ids = {FULL_CLASSES.index(name) for name, _ in DAMAGE_RENDERERS}
    assert ids == {1, 3, 4, 7, 8, 9, 10}
    assert ids | {0, 255} <= seen
    assert 0.03 < np.mean(damage_fraction) < 0.25


def test_cli_refuses_then_force_replaces(tmp_path):
    out = tmp_path / 'demo'
    args = ['--out', str(out), '--num-images', '6', '--val', '2', '--size', '64', '--no-progress']
    assert run_cli(args + ['--seed', '1'])[0] == 0
    before = digests(out)
    # same settings again: nothing to do, nothing touched
    code, stdout, _ = run_cli(args + ['--seed', '1'])
    assert code == 0
    assert 'nothing to do' in stdout
    assert digests(out) == before
    # other settings without --force: refused, nothing touched
    code, _, err = run_cli(args + ['--seed', '2'])
    assert code == 2
    assert f'{out} already exists and is not empty' in err and '--force' in err
    assert digests(out) == before
    # --force: replaced by exactly what a fresh run with seed 2 writes
    assert run_cli(args + ['--seed', '2', '--force'])[0] == 0
    generate_demo_dataset(tmp_path / 'fresh', seed=2, **SMALL)
    assert digests(out) == digests(tmp_path / 'fresh') != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo', 'fresh']


def test_user_data_is_not_overwritten(tmp_path):
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'notes.txt').write_text('my data')
    with pytest.raises(FileExistsError, match='Refusing to overwrite'):
        generate_demo_dataset(out, **SMALL)
    assert (out / 'notes.txt').read_text() == 'my data'


def test_interrupted_run_leaves_nothing_half_written(tmp_path, monkeypatch):
    out = tmp_path / 'demo'
    generate_demo_dataset(out, seed=0, **SMALL)
    before = digests(out)
    calls = []

    def failing_render(rng, size, material):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return render_sample(rng, size, material)

    monkeypatch.setattr(demo_generator, 'render_sample', failing_render)
    with pytest.raises(KeyboardInterrupt):
        generate_demo_dataset(out, seed=9, force=True, **SMALL)
    assert digests(out) == before  # the old dataset is intact
    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        generate_demo_dataset(tmp_path / 'new', seed=0, **SMALL)
    assert not (tmp_path / 'new').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo']  # no temp folders left


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_val=6'):
        generate_demo_dataset(tmp_path / 'x', num_images=6, num_val=6, progress=False)
    with pytest.raises(ValueError, match='size must be at least 32 pixels, got 8'):
        generate_demo_dataset(tmp_path / 'x', size=8, progress=False)
