"""tools/analysis_tools/compare.py end to end on tiny checkpoints in fake work dirs,
and the package modules it calls (artseg_mm.study: comparison, report, flops)."""
import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import artseg_mm  # noqa: F401
from artseg_mm.study import comparison, flops, report
from artseg_mm.apis import init_model
from conftest import PY, REPO, run_tool

COMPARE = REPO / 'tools' / 'analysis_tools' / 'compare.py'


def run_compare(argv) -> int:
    """Run the compare tool (its output shown when it fails); its exit code."""
    return run_tool([PY, COMPARE, *map(str, argv)]).returncode


def assert_compare_fails(argv, error: type, pattern: str) -> None:
    """The compare tool stops with ``error`` whose message matches ``pattern``."""
    proc = run_tool([PY, COMPARE, *map(str, argv)], check=False)
    assert proc.returncode != 0
    assert re.search(f'{error.__name__}: .*{pattern}', proc.stderr), proc.stderr[-3000:]


def tiny_config(data_root: Path, head_convs: int, seed: int) -> Config:
    """A tiny mmseg ResNet + FCN head on the ARTeFACT demo layout (binary labels)."""
    norm = dict(type='BN', requires_grad=True)
    dataset = dict(
        type='ARTeFACTDataset', data_root=str(data_root), label_mode='binary',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs',
                       meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                                  'reduce_zero_label', 'material', 'content'))])
    return Config(dict(
        default_scope='mmseg',
        custom_imports=dict(imports=['artseg_mm'], allow_failed_imports=False),
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                                   seg_pad_val=255),
            backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=4,
                          out_indices=(3, ), norm_cfg=norm),
            decode_head=dict(type='FCNHead', in_channels=32, in_index=0, channels=8,
                             num_convs=head_convs, num_classes=2, norm_cfg=norm,
                             loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_dataloader=dict(batch_size=1, num_workers=0, dataset=dataset),
        test_evaluator=dict(type='ArtSegMetric'),
        randomness=dict(seed=seed)))


def scalars_line(step: int, time_s: float) -> str:
    """A training record as mmengine's LocalVisBackend writes it."""
    return json.dumps(dict(lr=0.01, data_time=0.01, loss=0.6, time=time_s, epoch=1,
                           iter=step, step=step))


def fake_work_dir(root: Path, name: str, config: Config, torch_seed: int,
                  best: bool, times=(2.0, 1.0, 1.0)) -> Path:
    """What the Runner leaves: config dump, checkpoint(s), last_checkpoint, scalar logs."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    work_dir = root / name
    work_dir.mkdir(parents=True)
    config.dump(str(work_dir / f'{name.split("@")[0]}.py'))
    torch.manual_seed(torch_seed)
    model = MODELS.build(config.model)
    checkpoint = work_dir / ('best_mIoU_epoch_1.pth' if best else 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1, iter=3), state_dict=model.state_dict()), checkpoint)
    (work_dir / 'last_checkpoint').write_text(str(checkpoint))
    logs = work_dir / '20260101_000000' / 'vis_data'
    logs.mkdir(parents=True)
    lines = [scalars_line(step, t) for step, t in enumerate(times, start=1)]
    lines.append(json.dumps(dict(aAcc=50.0, mIoU=30.0, data_time=0.0, time=0.1, step=1)))
    (logs / 'scalars.json').write_text('\n'.join(lines) + '\n')
    return work_dir


@pytest.fixture(scope='module')
def compared(tiny_demo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('work_dirs')
    dirs = [
        fake_work_dir(root, 'tiny_a', tiny_config(tiny_demo_root, 1, seed=0), 0, best=True),
        # a second seed of the same model: grouped with tiny_a
        fake_work_dir(root, 'tiny_a_seed1', tiny_config(tiny_demo_root, 1, seed=1), 1,
                      best=False, times=(4.0, 2.0, 2.0)),
        fake_work_dir(root, 'tiny_b', tiny_config(tiny_demo_root, 2, seed=0), 2, best=True),
    ]
    out = root / 'compare'
    assert run_compare([*dirs, '--out', out, '--n-boot', '300', '--images', '2']) == 0
    return out, dirs


def test_compare_writes_tables_with_cis_for_every_model(compared):
    out, dirs = compared
    result = json.loads((out / 'comparison.json').read_text())
    models = {row['model']: row for row in result['models']}
    assert set(models) == {'tiny_a', 'tiny_b'}
    a, b = models['tiny_a'], models['tiny_b']
    assert a['runs'] == 2 and a['seeds'] == [0, 1] and b['runs'] == 1
    assert a['mIoU_seed_std'] is not None and b['mIoU_seed_std'] is None
    for row in (a, b):
        assert row['mIoU_ci_low'] <= row['mIoU'] <= row['mIoU_ci_high']
        assert row['damage_IoU_ci_low'] <= row['damage_IoU'] <= row['damage_IoU_ci_high']
        assert row['encoder'] == 'ResNetV1c-18' and row['n_images'] == 2
        assert row['params_m'] > 0 and row['gflops_512'] > 0 and row['infer_s_per_img'] > 0
        assert row['flops_note'] == ''
    # training time: sum of time x iterations since the previous logged step
    assert b['train_time_s'] == pytest.approx(2.0 + 1.0 + 1.0)
    assert a['train_time_s'] == pytest.approx((4.0 + 8.0) / 2)

    # the pooled mIoU of tiny_a is the mean of its two runs' own mIoU
    run_mious = [json.loads((out / 'runs' / d.name / 'metrics.json').read_text())
                 ['metrics']['mIoU'] for d in dirs[:2]]
    assert a['mIoU'] == pytest.approx(np.mean(run_mious), abs=0.02)

    with open(out / 'comparison.csv') as f:
        rows = list(csv.DictReader(f))
    assert [row['model'] for row in rows] == ['tiny_a', 'tiny_b']
    assert {'mIoU_ci_low', 'mIoU_ci_high', 'damage_IoU_ci_low', 'gflops_512',
            'infer_s_per_img', 'train_time_h'} <= set(rows[0])
    markdown = (out / 'comparison.md').read_text()
    assert 'mIoU [95% CI]' in markdown and 'damage IoU [95% CI]' in markdown
    assert '| tiny_a |' in markdown and '| tiny_b |' in markdown and 'significant' in markdown
    # tiny_b has one run: its intervals are about a checkpoint, and the table says so
    assert a['level'] == 'training runs' and b['level'] == 'checkpoints'
    assert 'tiny_b has one training run' in markdown


def test_compare_writes_pairwise_differences(compared):
    out, _ = compared
    with open(out / 'pairwise.csv') as f:
        pairs = list(csv.DictReader(f))
    assert [(p['model_a'], p['model_b'], p['metric']) for p in pairs] == [
        ('tiny_a', 'tiny_b', 'mIoU'), ('tiny_a', 'tiny_b', 'damage_IoU')]
    for pair in pairs:
        assert float(pair['ci_low']) <= float(pair['diff']) <= float(pair['ci_high'])
        excludes_0 = float(pair['ci_low']) > 0 or float(pair['ci_high']) < 0
        assert pair['ci_excludes_0'] == str(excludes_0)
        # two models: one pair per metric, so Holm leaves p as it is
        assert pair['p_holm'] == pair['p_value']
        assert pair['significant'] == str(float(pair['p_holm']) < 0.05)


def test_compare_writes_figures_and_per_run_results(compared, tiny_demo_root):
    out, dirs = compared
    bar = cv2.imread(str(out / 'metrics_bar.png'))
    assert bar is not None and bar.shape[0] > 100
    grid = cv2.imread(str(out / 'prediction_grid.png'))
    # 2 rows (images) x 4 columns (image, ground truth, 2 models): wider than tall
    assert grid is not None and grid.shape[1] > grid.shape[0]
    for work_dir in dirs:
        per_image = json.loads((out / 'runs' / work_dir.name / 'per_image.json').read_text())
        assert [Path(i['img_path']).stem for i in per_image['images']] == [
            'demo_0004', 'demo_0005']
        assert [i['material'] for i in per_image['images']] == ['canvas', 'paper']


def test_compare_writes_per_class_results_and_confusion_figures(compared):
    out, _ = compared
    with open(out / 'per_class.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['model'], r['class']) for r in rows] == [
        (m, c) for m in ('tiny_a', 'tiny_b') for c in ('Clean', 'Damage')]
    for row in rows:
        assert int(row['gt_images']) >= 1 and int(row['gt_pixels']) > 0
        # two test images: every interval rests on fewer than 5, and says so
        assert row['note'] == f"unreliable: ground truth in {row['gt_images']} images (< 5)"
        assert float(row['IoU_ci_low']) <= float(row['IoU']) <= float(row['IoU_ci_high'])
        assert float(row['Dice_ci_low']) <= float(row['Dice']) <= float(row['Dice_ci_high'])
    # the IoU of each class equals the comparison's own per-run statistics
    table = json.loads((out / 'comparison.json').read_text())['models']
    damage = {r['model']: r['damage_IoU'] for r in table}
    for row in rows:
        if row['class'] == 'Damage':
            assert float(row['IoU']) == pytest.approx(damage[row['model']], abs=0.01)
    chart = cv2.imread(str(out / 'per_class_iou.png'))
    assert chart is not None and chart.shape[1] > chart.shape[0]
    for model in ('tiny_a', 'tiny_b'):
        figure = cv2.imread(str(out / f'confusion_{model}.png'))
        assert figure is not None and min(figure.shape[:2]) > 200


def test_plot_confusions_rows_sum_to_one_and_mark_absent_classes(tmp_path):
    import types
    conf = np.zeros((2, 3, 3), np.int64)
    conf[0, 0, 0], conf[0, 0, 1], conf[1, 1, 1], conf[1, 2, 2] = 3, 1, 4, 0
    run = types.SimpleNamespace(per_image=dict(classes=['Clean', 'A', 'B'],
                                               confusions=conf))
    rows = comparison.per_class_results({'m': [run]}, types.SimpleNamespace(
        n_boot=50, seed=0, alpha=0.05))
    b = next(r for r in rows if r['cls'] == 'B')
    assert b['IoU'] is None and b['Dice'] is None and b['gt_pixels'] == 0
    assert b['note'].startswith('absent')
    args = comparison.ComparisonOptions(out=str(tmp_path), alpha=0.05)
    report.write_per_class(rows, args)
    with open(tmp_path / 'per_class.csv') as f:
        b_row = [r for r in csv.DictReader(f) if r['class'] == 'B'][0]
    assert b_row['IoU'] == 'NaN' and b_row['IoU_ci_low'] == 'NaN'
    assert (tmp_path / report.plot_per_class(rows, args).split('/')[-1]).is_file()
    [path] = report.plot_confusions({'m': [run]}, args)
    assert Path(path).name == 'confusion_m.png' and cv2.imread(path) is not None


def test_training_time_across_resumed_sessions(tmp_path):
    for stamp, records in (('20260101_000000', [(1, 2.0), (2, 1.0), (3, 1.0)]),
                           ('20260102_000000', [(3, 5.0), (4, 1.0)])):
        logs = tmp_path / stamp / 'vis_data'
        logs.mkdir(parents=True)
        (logs / 'scalars.json').write_text(
            '\n'.join(scalars_line(step, t) for step, t in records) + '\n')
    timing = comparison.training_time(str(tmp_path))
    # the resumed session's step 3 replaces the first one's
    assert timing['total_s'] == pytest.approx(2.0 + 1.0 + 5.0 + 1.0)
    assert timing['iters'] == 4
    missing = comparison.training_time(str(tmp_path / 'nothing'))
    assert missing['total_s'] is None and 'no training lines' in missing['reason']


def test_work_dir_without_checkpoint_or_config_is_named(tmp_path, tiny_demo_root):
    empty = tmp_path / 'empty_run'
    empty.mkdir()
    assert_compare_fails([empty, '--out', tmp_path / 'out'], FileNotFoundError,
                         r'empty_run has no config dump: expected <work_dir>/<config name>.py')
    tiny_config(tiny_demo_root, 1, 0).dump(str(empty / 'tiny.py'))
    with pytest.raises(FileNotFoundError, match=r'no checkpoint in .*empty_run: expected '
                       r'best_\*.pth or a last_checkpoint'):
        comparison.load_runs([str(empty)], None)


def test_grid_images_by_id_and_by_disagreement():
    class FakeRun:
        def __init__(self, preds):
            self.preds = preds

    gt = np.zeros((4, 4), np.uint8)
    keep = {'calm': (None, gt), 'torn': (None, gt), 'mixed': (None, gt)}
    same, half, all_ = gt.copy(), gt.copy(), np.ones_like(gt)
    half[:2] = 1
    groups = {'m1': [FakeRun(dict(calm=same, torn=same, mixed=same))],
              'm2': [FakeRun(dict(calm=same, torn=all_, mixed=half))]}

    class Args:
        show_images = None
        images = 2

    assert comparison.choose_images(groups, keep, Args) == ['torn', 'mixed']
    Args.show_images = ['calm']
    assert comparison.choose_images(groups, keep, Args) == ['calm']
    Args.show_images = ['nope']
    with pytest.raises(ValueError, match=r"--show-images: \['nope'\] not in the test split"):
        comparison.choose_images(groups, keep, Args)


def test_flops_of_a_fixed_size_encoder_are_counted_at_512():
    """CoaT built for 64 px rejects 512 px; the count uses the same architecture at 512."""
    config = Config(dict(default_scope='mmseg', model=dict(
        type='EncoderDecoder',
        backbone=dict(type='TimmFeatureBackbone', model_name='coat_lite_tiny', img_size=64,
                      pretrained=False, out_indices=(3, )),
        decode_head=dict(type='FCNHead', in_channels=320, in_index=0, channels=4,
                         num_convs=1, num_classes=2),
        test_cfg=dict(mode='whole'))))
    model = init_model(config, None, device='cpu')
    gflops, note = flops.count_flops(model, config, 'cpu')
    assert gflops > 0
    assert note == ("counted on the architecture built with img_size=512 "
                    "(the checkpoint's model takes 64)")


def test_flops_count_nnpack_convs_like_default_convs():
    """mmengine's jit-traced counter cannot see into WinogradConv2d's NNPACK path;
    the count must not depend on which path a conv takes."""
    from artseg_mm.models.layers import WinogradConv2d
    torch.manual_seed(0)
    winograd = torch.nn.Sequential(WinogradConv2d(3, 4, 3, padding=1))
    assert winograd[0].uses_nnpack(torch.zeros(1, 3, 512, 512))
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    expected = 512 * 512 * 9 * 3 * 4 / 1e9  # multiply-adds, as mmengine counts
    assert flops.gflops(winograd, 'cpu') == pytest.approx(expected, rel=1e-6)
    assert flops.gflops(plain, 'cpu') == pytest.approx(expected, rel=1e-6)


def make_run(cfg: Config, name: str, seed) -> 'comparison.Run':
    return comparison.Run(work_dir=f'work_dirs/{name}', config_path=f'{name}.py', cfg=cfg,
                       checkpoint='x.pth', name=name, model='tiny', seed=seed)


def test_runs_of_one_config_are_pooled_only_across_seeds(tiny_demo_root):
    a = tiny_config(tiny_demo_root, 1, seed=0)
    b = tiny_config(tiny_demo_root, 1, seed=1)
    b.work_dir = 'elsewhere'
    groups = comparison.group_runs([make_run(a, 'tiny', 0), make_run(b, 'tiny_seed1', 1)])
    assert [r.seed for r in groups['tiny']] == [0, 1]
    # same name, same seed, other epochs and data: another experiment, refused by name
    other = tiny_config(tiny_demo_root, 1, seed=0)
    other.train_cfg = dict(max_epochs=1)
    other.test_dataloader.dataset.data_root = '/elsewhere'
    with pytest.raises(ValueError, match=r"differ in more than randomness.seed: "
                                         r"test_dataloader.dataset.data_root: .* != "
                                         r"'/elsewhere'; train_cfg.max_epochs: "
                                         r"'<not set>' != 1"):
        comparison.group_runs([make_run(a, 'tiny', 0), make_run(other, 'tiny@2', 0)])
    # the settings alone equal but the seed repeated: one run passed twice
    with pytest.raises(ValueError, match=r'have the seeds \[0, 0\]'):
        comparison.group_runs([make_run(a, 'tiny', 0), make_run(a.copy(), 'tiny@2', 0)])


def test_only_the_model_may_differ_between_compared_models(tiny_demo_root):
    a = tiny_config(tiny_demo_root, 1, seed=0)
    b = tiny_config(tiny_demo_root, 2, seed=0)           # another decoder depth: the model
    b.model.backbone.depth = 34
    groups = {'tiny_a': [make_run(a, 'tiny_a', 0)], 'tiny_b': [make_run(b, 'tiny_b', 0)]}
    assert comparison.unlike_settings(groups) == []
    # the loss is part of the protocol even though it sits in the decode head
    b.model.decode_head.loss_decode = dict(type='DiceLoss')
    b.train_cfg = dict(max_epochs=1)
    diffs = comparison.unlike_settings(groups)
    assert "model.decode_head.loss_decode.type: tiny_a 'CrossEntropyLoss' != tiny_b " \
        "'DiceLoss'" in diffs
    assert "train_cfg.max_epochs: tiny_a '<not set>' != tiny_b 1" in diffs
    with pytest.raises(comparison.UnlikeRunsError, match='--allow-unlike'):
        comparison.check_like_runs(groups, allow_unlike=False)
    assert comparison.check_like_runs(groups, allow_unlike=True) == diffs


def test_compare_refuses_runs_of_other_schedules_unless_labelled(tiny_demo_root, tmp_path):
    long, short = (tiny_config(tiny_demo_root, convs, seed=0) for convs in (1, 2))
    long.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12)
    short.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    dirs = [fake_work_dir(tmp_path, 'long', long, 0, best=True),
            fake_work_dir(tmp_path, 'short', short, 1, best=True)]
    out = tmp_path / 'out'
    proc = run_tool([PY, COMPARE, *dirs, '--out', out, '--n-boot', '200', '--no-flops'],
                    check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'train_cfg.max_epochs: long 12 != short 1' in proc.stderr
    assert not out.exists()  # refused before any model was run
    assert run_compare([*dirs, '--out', out, '--n-boot', '200', '--no-flops',
                        '--allow-unlike']) == 0
    markdown = (out / 'comparison.md').read_text()
    assert markdown.count('**Unlike runs**') == 2  # above both tables
    assert '- train_cfg.max_epochs: long 12 != short 1' in markdown
    result = json.loads((out / 'comparison.json').read_text())
    assert result['unlike_settings'] == ['train_cfg.max_epochs: long 12 != short 1']
    # one run per model: the tables say the comparison is of checkpoints
    assert 'compare checkpoints on images like these, not encoder families' in markdown
    assert {pair['level'] for pair in result['pairwise']} == {'checkpoints'}


def fold_config(data_root: Path, split_file: Path, head_convs: int = 1) -> Config:
    """tiny_config tested on one fold's held-out split."""
    cfg = tiny_config(data_root, head_convs, seed=0)
    cfg.test_dataloader.dataset.ann_file = str(split_file)
    cfg.test_dataloader.dataset.data_prefix = dict(img_path='img_dir', seg_map_path='ann_dir')
    return cfg


def test_folds_mode_reports_each_held_out_group_and_the_mean_over_folds(tiny_demo_root,
                                                                        tmp_path):
    from artseg_mm.data_prep.folds import make_folds, read_groups, write_folds
    source = read_groups(tiny_demo_root, 'material')
    splits = tmp_path / 'splits'
    index = write_folds(splits, 'material', make_folds(source.groups, source.parents, 0.3),
                        source.folders)
    assert len(index) >= 2
    runs = [fake_work_dir(tmp_path / 'runs', f"tiny@{entry['name']}",
                          fold_config(tiny_demo_root, splits / entry['name'] / 'test.txt'),
                          torch_seed=0, best=True) for entry in index]
    out = tmp_path / 'out'
    assert run_compare([*runs, '--folds', '--out', out, '--n-boot', '300']) == 0
    with open(out / 'folds.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [row['group'] for row in rows] == sorted(e['holdout'] for e in index) + [
        'mean over folds']
    by_group = {row['group']: row for row in rows}
    for entry in index:  # each group scored on its own held-out images
        assert int(by_group[entry['holdout']]['n_images']) == entry['test']
        per_image = json.loads((out / 'runs' / f"tiny_{entry['name']}" / 'per_image.json')
                               .read_text())
        assert {image['material'] for image in per_image['images']} == {entry['holdout']}
    overall = by_group['mean over folds']
    groups_miou = [float(by_group[e['holdout']]['mIoU']) for e in index]
    assert float(overall['mIoU']) == pytest.approx(np.mean(groups_miou), abs=0.01)
    assert float(overall['mIoU_ci_low']) <= float(overall['mIoU']) <= float(
        overall['mIoU_ci_high'])
    assert int(overall['n_images']) == sum(e['test'] for e in index)
    assert 'damage_IoU' in overall and (out / 'folds.png').stat().st_size > 0
    assert 'Leave-one-material-out' in (out / 'folds.md').read_text()
    # a fold run with other settings is not the same protocol
    odd = fake_work_dir(tmp_path / 'odd', f"tiny@{index[0]['name']}",
                        fold_config(tiny_demo_root, splits / index[0]['name'] / 'test.txt', 2),
                        torch_seed=0, best=True)
    with pytest.raises(ValueError, match=r'differ in more than their split files: '
                                         r'model.decode_head.num_convs: 2 != 1'):
        comparison.fold_runs(comparison.load_runs([str(odd), *map(str, runs[1:])], None))
    # a run that is not a fold run is named
    plain = fake_work_dir(tmp_path / 'plain', 'tiny', tiny_config(tiny_demo_root, 1, 0),
                          torch_seed=0, best=True)
    with pytest.raises(ValueError, match='ann_file is not set, so this is not a fold run'):
        comparison.fold_runs(comparison.load_runs([str(plain), *map(str, runs)], None))


def test_compare_uses_the_runs_test_results_of_its_checkpoint(tiny_demo_root, tmp_path):
    """The predictions and confusions of ``tools/test.py --work-dir RUN/test --out
    RUN/test/masks`` are reused when they are of the run's checkpoint: the same
    results as predicting afresh, with only a few images timed."""
    import shutil
    work_dir = fake_work_dir(tmp_path, 'tiny_t', tiny_config(tiny_demo_root, 1, seed=0), 3,
                             best=True)
    run_tool([PY, REPO / 'tools' / 'test.py', work_dir / 'tiny_t.py',
              work_dir / 'best_mIoU_epoch_1.pth', '--work-dir', work_dir / 'test',
              '--out', work_dir / 'test' / 'masks', '--cfg-options', 'test_cfg.type=TestLoop'])
    outputs = {}
    for case in ('reused', 'other checkpoint', 'predicted'):
        if case == 'other checkpoint':
            metrics = work_dir / 'test' / 'metrics.json'
            record = json.loads(metrics.read_text())
            shutil.copy(record['checkpoint'], tmp_path / 'other.pth')
            metrics.write_text(json.dumps(dict(record, checkpoint=str(tmp_path / 'other.pth'))))
        if case == 'predicted':
            shutil.rmtree(work_dir / 'test')
        out = tmp_path / case.replace(' ', '_')
        proc = run_tool([PY, COMPARE, work_dir, '--out', out, '--n-boot', '200', '--no-flops'])
        said = {'reused': 'using the test results', 'other checkpoint': 'is of checkpoint',
                'predicted': 'no test results'}[case]
        assert said in proc.stdout, proc.stdout
        outputs[case] = out
    results = {case: json.loads((out / 'comparison.json').read_text())['models'][0]
               for case, out in outputs.items()}
    per_image = {case: json.loads((out / 'runs' / 'tiny_t' / 'per_image.json').read_text())
                 for case, out in outputs.items()}
    for case in ('reused', 'other checkpoint'):
        assert per_image[case] == per_image['predicted']
        for key in ('mIoU', 'mIoU_ci_low', 'mIoU_ci_high', 'damage_IoU'):
            assert results[case][key] == results['predicted'][key]
        grid = cv2.imread(str(outputs[case] / 'prediction_grid.png'))
        np.testing.assert_array_equal(
            grid, cv2.imread(str(outputs['predicted'] / 'prediction_grid.png')))
