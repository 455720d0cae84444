"""tools/test.py --tta: the configs' tta_pipeline with mmseg's SegTTAModel."""
import json
import sys

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope

import artseg_mm  # noqa: F401
from conftest import PY, REPO, run_tool

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402


def test_tta_pipeline_gives_flips_at_three_scales_and_the_mask_unchanged(tiny_demo_root):
    from mmseg.registry import TRANSFORMS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo.py'))
    pipeline = [TRANSFORMS.build(step) for step in cfg.tta_pipeline]
    image = sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0]
    mask = cv2.imread(str(tiny_demo_root / 'ann_dir' / 'val' / image.name), cv2.IMREAD_UNCHANGED)
    results = dict(img_path=str(image), seg_map_path=str(tiny_demo_root / 'ann_dir' / 'val' /
                                                          image.name),
                   reduce_zero_label=False, seg_fields=[], label_map=None)
    for step in pipeline:
        results = step(results)
    samples = results['data_samples']
    assert len(samples) == 6
    height, width = mask.shape
    sizes = sorted({tuple(s.metainfo['img_shape']) for s in samples})
    assert sizes == [(round(height * r), round(width * r)) for r in (0.75, 1.0, 1.25)]
    assert sorted(s.metainfo['flip'] for s in samples) == [False] * 3 + [True] * 3
    for sample in samples:  # ground truth at the source size, not flipped (binary labels)
        gt = sample.gt_sem_seg.data.numpy()[0]
        np.testing.assert_array_equal(gt == 255, mask == 255)


def test_test_tool_runs_with_tta(tiny_demo_root, tmp_path):
    work_dir = write_work_dir(tmp_path)
    data = [f'test_dataloader.dataset.data_root={tiny_demo_root}',
            'test_dataloader.num_workers=0']
    run_tool([PY, REPO / 'tools' / 'test.py', work_dir / 'tiny_convnext.py',
              work_dir / 'best_mIoU_epoch_1.pth', '--tta', '--work-dir', tmp_path / 'w',
              '--out', tmp_path / 'out', '--cfg-options'] + data)
    per_image = json.loads((tmp_path / 'w' / 'per_image.json').read_text())
    val = sorted((tiny_demo_root / 'ann_dir' / 'val').glob('*.png'))
    assert len(per_image['images']) == len(val)
    for record in per_image['images']:  # every labelled pixel of the source scored once
        mask = cv2.imread(str(tiny_demo_root / 'ann_dir' / 'val' /
                              record['img_path'].rsplit('/', 1)[1]), cv2.IMREAD_UNCHANGED)
        assert np.sum(record['confusion']) == np.sum(mask != 255)
    metrics = json.loads((tmp_path / 'w' / 'metrics.json').read_text())
    assert 'mIoU' in json.dumps(metrics)
    # --out holds the masks only (mmseg's confusion_matrix.py reads every file there)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == sorted(
        p.name for p in (tiny_demo_root / 'ann_dir' / 'val').glob('*.png'))
