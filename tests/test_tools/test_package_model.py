"""tools/misc/package_model.py: a folder tools/infer.py takes as --model, giving the
work dir's mask; a second run needs --force; bad input exits with the reason."""
import sys

import cv2
import numpy as np

from conftest import PY, REPO, run_tool

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from package_helpers import write_packable_work_dir  # noqa: E402

PACKAGE = REPO / 'tools' / 'misc' / 'package_model.py'
INFER = REPO / 'tools' / 'infer.py'


def test_packaged_folder_segments_as_the_work_dir(tmp_path, tiny_demo_root):
    from artseg_mm.apis import ScanInferencer
    work_dir = write_packable_work_dir(tmp_path, tiny_demo_root)
    folder = tmp_path / 'tiny_model'
    proc = run_tool([PY, PACKAGE, work_dir, '--out', folder])
    assert 'model.safetensors' in proc.stdout and 'README.md' in proc.stdout
    image = sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0]
    run_tool([PY, INFER, image, '--model', folder, '--out', tmp_path / 'infer'])
    mask = cv2.imread(str(tmp_path / 'infer' / 'masks' / image.name), cv2.IMREAD_UNCHANGED)
    expected = ScanInferencer(str(work_dir))(str(image))
    assert len(np.unique(expected)) == 2
    np.testing.assert_array_equal(mask, expected)

    again = run_tool([PY, PACKAGE, work_dir, '--out', folder], check=False)
    assert again.returncode == 1 and 'not empty' in again.stderr and '--force' in again.stderr
    foreign = tmp_path / 'infer'  # --force does not replace a folder it did not write
    forced = run_tool([PY, PACKAGE, work_dir, '--out', foreign, '--force'], check=False)
    assert forced.returncode == 1 and 'has no artseg_model.json' in forced.stderr
    assert (foreign / 'index.html').is_file()


def test_work_dir_without_checkpoint_is_named(tmp_path):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    (work_dir / 'run.py').write_text("model = dict(type='EncoderDecoder')\n")
    proc = run_tool([PY, PACKAGE, work_dir, '--out', tmp_path / 'm'], check=False)
    assert proc.returncode == 1
    assert f'package_model: no checkpoint in {work_dir}' in proc.stderr
    assert not (tmp_path / 'm').exists()
