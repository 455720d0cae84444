"""ArtSegMetric through mmengine's Evaluator, as the Runner's val/test loops use it."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

import artseg_mm  # noqa: F401
from artseg_mm.datasets.artefact_classes import BINARY_CLASSES, FULL_CLASSES
from artseg_mm.evaluation import load_per_image
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample


def make_sample(pred, label, name, material=None, content=None, with_meta=True):
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    sample.gt_sem_seg = PixelData(data=torch.as_tensor(label)[None])
    meta = dict(img_path=f'/data/img_dir/val/{name}.png')
    if with_meta:
        meta.update(material=material, content=content)
    sample.set_metainfo(meta)
    return sample


def binary_samples():
    """Three 4x4 images; 255 marks background in the labels."""
    label_a = np.array([[0, 0, 1, 1]] * 4)
    pred_a = np.array([[0, 1, 1, 1]] * 4)          # 4 clean pixels called damage
    label_b = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [255] * 4, [255] * 4])
    pred_b = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1] * 4, [1] * 4])
    label_c = np.zeros((4, 4), dtype=int)
    pred_c = np.zeros((4, 4), dtype=int)
    return [make_sample(pred_a, label_a, 'a', 'paper', 'photo'),
            make_sample(pred_b, label_b, 'b', 'paper', 'art'),
            make_sample(pred_c, label_c, 'c', None, 'art')]


def independent_binary():
    """Counts of the three images above, written out by hand."""
    # rows gt, cols pred. a: clean 8 (4 right, 4 -> damage), damage 8 right.
    # b: clean 4 right; damage 4 (2 right, 2 -> clean). c: clean 16 right.
    tp_clean, tp_damage = 4 + 4 + 16, 8 + 2
    clean_as_damage, damage_as_clean = 4, 2
    iou_clean = tp_clean / (tp_clean + clean_as_damage + damage_as_clean)
    iou_damage = tp_damage / (tp_damage + clean_as_damage + damage_as_clean)
    dice_clean = 2 * tp_clean / (2 * tp_clean + clean_as_damage + damage_as_clean)
    dice_damage = 2 * tp_damage / (2 * tp_damage + clean_as_damage + damage_as_clean)
    return dict(iou=(iou_clean, iou_damage), dice=(dice_clean, dice_damage),
                aacc=(tp_clean + tp_damage) / 40,
                precision_damage=tp_damage / (tp_damage + clean_as_damage),
                recall_damage=tp_damage / (tp_damage + damage_as_clean))


def evaluate(metric_cfg, classes, samples):
    evaluator = Evaluator(METRICS.build(metric_cfg))
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process(data_samples=samples, data_batch=None)
    return evaluator.evaluate(len(samples))


def test_binary_metrics_breakdowns_and_files(tmp_path):
    out = tmp_path / 'eval'
    metrics = evaluate(dict(type='ArtSegMetric', n_boot=500, table_dir=str(out)),
                       BINARY_CLASSES, binary_samples())
    want = independent_binary()
    assert metrics['mIoU'] == pytest.approx(round(100 * np.mean(want['iou']), 2))
    assert metrics['damage_IoU'] == pytest.approx(round(100 * want['iou'][1], 2))
    assert metrics['IoU.Damage'] == metrics['damage_IoU']
    assert metrics['IoU.Clean'] == pytest.approx(round(100 * want['iou'][0], 2))
    assert metrics['mDice'] == pytest.approx(round(100 * np.mean(want['dice']), 2))
    assert metrics['Dice.Damage'] == pytest.approx(round(100 * want['dice'][1], 2))
    assert metrics['aAcc'] == pytest.approx(round(100 * want['aacc'], 2))
    assert metrics['mIoU_ci_low'] <= metrics['mIoU'] <= metrics['mIoU_ci_high']
    assert metrics['damage_IoU_ci_low'] <= metrics['damage_IoU'] <= metrics['damage_IoU_ci_high']
    # plain Python floats only: checkpoints must stay weights_only-loadable
    assert all(type(value) is float for value in metrics.values())

    summary = json.loads((out / 'metrics.json').read_text())
    assert summary['n_images'] == 3
    assert summary['metrics']['mIoU'] == metrics['mIoU']
    with open(out / 'per_class.csv') as f:
        rows = {row['Class']: row for row in csv.DictReader(f)}
    assert float(rows['Damage']['Precision']) == pytest.approx(
        round(100 * want['precision_damage'], 2))
    assert float(rows['Damage']['Recall']) == pytest.approx(round(100 * want['recall_damage'], 2))
    assert int(rows['Damage']['gt_pixels']) == 12 and int(rows['Damage']['pred_pixels']) == 14

    with open(out / 'per_group.csv') as f:
        groups = {(row['key'], row['value']): row for row in csv.DictReader(f)}
    assert set(groups) == {('material', 'paper'), ('material', '(none)'),
                           ('content', 'photo'), ('content', 'art')}
    paper = groups[('material', 'paper')]   # images a and b
    assert int(paper['n_images']) == 2
    assert float(paper['damage_IoU']) == pytest.approx(round(100 * 10 / 16, 2))
    assert float(groups[('material', '(none)')]['aAcc']) == 100.0

    per_image = load_per_image(str(out / 'per_image.json'))
    assert [image['material'] for image in per_image['images']] == ['paper', 'paper', None]
    assert per_image['classes'] == list(BINARY_CLASSES)
    np.testing.assert_array_equal(per_image['confusions'][0], [[4, 4], [0, 8]])
    assert per_image['confusions'].sum() == 40


def test_full_classes_have_no_damage_iou_and_nan_for_absent_classes(tmp_path):
    label = np.array([[0, 1], [2, 0]])
    pred = np.array([[0, 1], [1, 3]])
    out = tmp_path / 'tables'
    metrics = evaluate(dict(type='ArtSegMetric', bootstrap=False, table_dir=str(out)),
                       FULL_CLASSES, [make_sample(pred, label, 'x', with_meta=False)])
    assert 'damage_IoU' not in metrics and 'mIoU_ci_low' not in metrics
    assert metrics['IoU.Clean'] == 50.0 and metrics['IoU.Material loss'] == 50.0
    assert metrics['IoU.Peel'] == 0.0          # in the ground truth, never found
    # Dust is predicted but absent from the ground truth, Dirt neither: not scored
    assert math.isnan(metrics['IoU.Dust']) and math.isnan(metrics['Dice.Dust'])
    assert math.isnan(metrics['IoU.Dirt'])
    # mean over the three classes with ground truth; mmseg's also counts Dust as 0
    assert metrics['mIoU'] == pytest.approx(round(100 * 1 / 3, 2))
    assert metrics['mIoU_mmseg'] == pytest.approx(round(100 * 1 / 4, 2))
    summary = json.loads((out / 'metrics.json').read_text())
    assert summary['metrics']['IoU.Dust'] is None and summary['metrics']['Dice.Dust'] is None
    assert summary['metrics']['IoU.Peel'] == 0.0
    assert summary['mIoU_classes'] == ['Clean', 'Material loss', 'Peel']


def test_output_dir_holds_the_masks_only_and_tables_go_to_table_dir(tmp_path):
    """output_dir as mmseg's IoUMetric fills it (what tools/test.py --out and
    mmseg's confusion_matrix.py use): one mask per image and nothing else."""
    from PIL import Image
    samples = binary_samples()
    ours, theirs, tables = tmp_path / 'ours', tmp_path / 'mmseg', tmp_path / 'tables'
    evaluate(dict(type='ArtSegMetric', bootstrap=False, output_dir=str(ours),
                  keep_results=True, table_dir=str(tables), checkpoint='/x/best.pth'),
             BINARY_CLASSES, samples)
    evaluate(dict(type='IoUMetric', output_dir=str(theirs)), BINARY_CLASSES, binary_samples())
    names = sorted(path.name for path in theirs.iterdir())
    assert sorted(path.name for path in ours.iterdir()) == names == ['a.png', 'b.png', 'c.png']
    for name in names:
        np.testing.assert_array_equal(np.array(Image.open(ours / name)),
                                      np.array(Image.open(theirs / name)))
    mask = np.array(Image.open(ours / 'b.png'))
    np.testing.assert_array_equal(mask, samples[1].pred_sem_seg.data[0].numpy())
    assert sorted(path.name for path in tables.iterdir()) == [
        'metrics.json', 'per_class.csv', 'per_group.csv', 'per_image.json']
    assert json.loads((tables / 'metrics.json').read_text())['checkpoint'] == '/x/best.pth'


def test_no_prefix_warning(tmp_path):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('artseg_metric_prefix', log_file=str(tmp_path / 'log.txt'))
    METRICS.build(dict(type='ArtSegMetric'))
    logger.handlers[-1].flush()
    assert 'prefix is not set' not in (tmp_path / 'log.txt').read_text()
    assert METRICS.build(dict(type='ArtSegMetric', prefix='val')).prefix == 'val'


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match='keep_results=True needs an output_dir'):
        METRICS.build(dict(type='ArtSegMetric', keep_results=True))
    sample = make_sample(np.zeros((2, 2)), np.zeros((2, 2)), 'y')
    del sample.gt_sem_seg
    with pytest.raises(KeyError, match=r"y.png has no 'gt_sem_seg'"):
        evaluate(dict(type='ArtSegMetric'), BINARY_CLASSES, [sample])
    bad = make_sample(np.zeros((2, 2)), np.array([[0, 5], [1, 1]]), 'z')
    with pytest.raises(ValueError,
                       match=r'image /data/img_dir/val/z.png: .*label holds values \[5\]'):
        evaluate(dict(type='ArtSegMetric'), BINARY_CLASSES, [bad])


def test_per_class_rows_give_intervals_counts_and_absent_classes_as_nan(tmp_path):
    """A class predicted but absent from the split's ground truth is NaN with the
    reason, not the 0 (or 100) its confusion counts give; present classes get
    IoU/Dice intervals around their estimate and their pixel and image counts."""
    label_a = np.array([[0, 0], [1, 1]])
    label_b = np.array([[0, 1], [0, 0]])
    pred_a = np.array([[0, 3], [1, 1]])   # predicts Dust, which no image holds
    pred_b = np.array([[0, 0], [0, 0]])
    out = tmp_path / 'out'
    evaluate(dict(type='ArtSegMetric', n_boot=200, table_dir=str(out)), FULL_CLASSES,
             [make_sample(pred_a, label_a, 'a', with_meta=False),
              make_sample(pred_b, label_b, 'b', with_meta=False)])
    with open(out / 'per_class.csv') as f:
        rows = {row['Class']: row for row in csv.DictReader(f)}
    dust = rows['Dust']
    assert dust['pred_pixels'] == '1' and dust['gt_pixels'] == '0' and dust['gt_images'] == '0'
    for key in ('IoU', 'Dice', 'IoU_ci_low', 'IoU_ci_high', 'Dice_ci_low', 'Dice_ci_high'):
        assert math.isnan(float(dust[key])), key
    assert 'absent' in dust['note']
    loss = rows['Material loss']
    assert (loss['gt_pixels'], loss['gt_images']) == ('3', '2')
    # two images are too few for an interval to be trusted: flagged in the table
    assert loss['note'] == 'unreliable: ground truth in 2 images (< 5)'
    assert float(loss['IoU']) == pytest.approx(100 * 2 / 3, abs=0.01)
    assert float(loss['IoU_ci_low']) <= float(loss['IoU']) <= float(loss['IoU_ci_high'])
    # resampling image b alone gives IoU 0, image a alone 100: the interval spans both
    assert float(loss['IoU_ci_low']) == 0.0 and float(loss['IoU_ci_high']) == 100.0
    summary = json.loads((out / 'metrics.json').read_text())
    dust_json = next(r for r in summary['per_class'] if r['Class'] == 'Dust')
    assert dust_json['IoU'] is None and dust_json['note'].startswith('absent')


def random_samples(num_classes, n=4, size=24, seed=0):
    """n random predictions and labels over num_classes, a quarter ignored (255)."""
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(n):
        label = rng.integers(0, num_classes, (size, size))
        label[rng.random((size, size)) < 0.25] = 255
        pred = np.where(rng.random((size, size)) < 0.6, label % 255,
                        rng.integers(0, num_classes, (size, size)))
        pred[label == 255] = rng.integers(0, num_classes)
        samples.append(make_sample(pred, label, f'r{index}', with_meta=False))
    return samples


@pytest.mark.parametrize('classes, samples', [
    (BINARY_CLASSES, binary_samples()),
    (BINARY_CLASSES, random_samples(2, seed=1)),
    (FULL_CLASSES, random_samples(len(FULL_CLASSES), seed=2)),
    (FULL_CLASSES, random_samples(len(FULL_CLASSES), n=1, size=3, seed=3)),  # classes absent
], ids=['binary', 'binary-random', 'full-random', 'full-sparse'])
def test_metric_values_equal_mmseg_iou_metric(classes, samples):
    """The summary metrics equal mmseg's IoUMetric (mIoU, mDice, mFscore) on the
    same samples, and the per-class IoU and Dice equal its per-class areas'.
    mmseg counts areas in float32, so its percentages carry float32 noise."""
    import warnings
    from mmseg.evaluation import IoUMetric
    ours = evaluate(dict(type='ArtSegMetric', bootstrap=False), classes, samples)
    with warnings.catch_warnings():  # np.nanmean of all-NaN classes warns in mmseg
        warnings.simplefilter('ignore', RuntimeWarning)
        theirs = evaluate(dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice', 'mFscore']),
                          classes, samples)
    # mmseg's mIoU under its own name; aAcc and recall (mmseg's Acc) are the same
    # quantity; where every class has ground truth, so are the other means
    np.testing.assert_allclose(ours['mIoU_mmseg'], theirs['mIoU'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours['aAcc'], theirs['aAcc'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours['mRecall'], theirs['mAcc'], rtol=0, atol=1e-4)  # its name
    areas = [IoUMetric.intersect_and_union(s.pred_sem_seg.data.squeeze(),
                                           s.gt_sem_seg.data.squeeze(), len(classes), 255)
             for s in samples]
    totals = [sum(area) for area in zip(*areas)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        per_class = IoUMetric.total_area_to_metrics(*totals, ['mIoU', 'mDice'])
    present = (totals[3] > 0).numpy()  # label area: the classes with ground truth
    if present.all():
        for key in ('mIoU', 'mDice', 'mPrecision'):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=1e-4, err_msg=key)
    for name in ('IoU', 'Dice'):
        got = np.array([ours[f'{name}.{cls}'] for cls in classes])
        np.testing.assert_allclose(got[present], np.round(per_class[name] * 100, 2)[present],
                                   rtol=0, atol=1e-4, err_msg=name)
        assert np.isnan(got[~present]).all()  # mmseg: 0 if predicted, NaN if not


def test_format_only_writes_mmseg_masks_without_ground_truth(tmp_path):
    """format_only, as mmseg's IoUMetric: the masks (+1 with reduce_zero_label)
    as <image name>.png in output_dir, no ground truth read, no metrics."""
    from PIL import Image
    samples = binary_samples()
    for sample in samples:
        del sample.gt_sem_seg
    samples[2].set_metainfo(dict(reduce_zero_label=True))
    ours, theirs = tmp_path / 'ours', tmp_path / 'mmseg'
    assert evaluate(dict(type='ArtSegMetric', output_dir=str(ours), format_only=True),
                    BINARY_CLASSES, samples) == {}
    assert evaluate(dict(type='IoUMetric', output_dir=str(theirs), format_only=True),
                    BINARY_CLASSES, samples) == {}
    names = sorted(path.name for path in theirs.iterdir())
    assert names == ['a.png', 'b.png', 'c.png']
    assert sorted(path.name for path in ours.iterdir()) == names
    for name in names:
        np.testing.assert_array_equal(np.array(Image.open(ours / name)),
                                      np.array(Image.open(theirs / name)))
    np.testing.assert_array_equal(np.array(Image.open(ours / 'c.png')), np.ones((4, 4)))
    with pytest.raises(ValueError, match='format_only=True needs an output_dir'):
        METRICS.build(dict(type='ArtSegMetric', format_only=True))
