"""Training on a node without internet: the weights folder of
tools/misc/fetch_pretrained.py, one clear stop when weights or data are missing, and
the preflight check (tools/train.py --dry-run)."""
import json
import shutil
from collections import Counter

import pytest
import timm
import torch
from mmengine.config import Config

from artseg_mm.datasets.layout import LABEL_MODE_KEY
from artseg_mm.models.backbones.pretrained_weights import (INDEX_FILE,
                                                           PretrainedWeightsUnavailable)
from conftest import (PY, REPO, SMALL_MODEL_OPTIONS, STUDY_CONFIGS, run_tool, study_config,
                      tiny_run_options)

TRAIN = REPO / 'tools' / 'train.py'
DEMO_CONFIG = REPO / 'configs' / 'demo' / 'convnext_tiny_upernet_demo.py'
OFFLINE = {'HF_HUB_OFFLINE': '1'}


@pytest.fixture(scope='module')
def weights_folder(tmp_path_factory):
    """fetch_pretrained.py's folder for the four study encoders, made from timm
    classifier weights saved locally (seeded, no network): (folder, saved weights)."""
    tmp = tmp_path_factory.mktemp('weights')
    local, saved = [], {}
    for config in STUDY_CONFIGS:
        name = study_config(config).model.backbone.model_name
        torch.manual_seed(len(saved))
        state = timm.create_model(name, pretrained=False).state_dict()
        torch.save(state, tmp / f'{name}.pth')
        local.append(f'{name}={tmp / f"{name}.pth"}')
        saved[name] = state
    folder = tmp / 'folder'
    run_tool([PY, REPO / 'tools/misc/fetch_pretrained.py', '--out', folder, '--local', *local],
             env_extra=dict(OFFLINE, HF_HOME=str(tmp / 'empty_cache')))
    return folder, saved


def test_the_weights_folder_loads_strictly_into_every_study_config(weights_folder):
    from artseg_mm.models.backbones import TimmFeatureBackbone
    folder, saved = weights_folder
    index = json.loads((folder / INDEX_FILE).read_text())['weights']
    assert sorted(index) == sorted(saved)
    for config in STUDY_CONFIGS:
        # the study configs ask for ImageNet weights (study_config turns them off)
        assert Config.fromfile(REPO / 'configs' / f'{config}_artefact.py'
                               ).model.backbone.pretrained is True
        backbone_cfg = study_config(config).model.backbone.copy()
        backbone_cfg.pop('type')
        backbone_cfg.pretrained = True
        name = backbone_cfg.model_name
        assert f'{config}_artefact.py' in index[name]['configs']
        backbone = TimmFeatureBackbone(**backbone_cfg, pretrained_dir=str(folder))
        # every tensor of the features model is one of the saved classifier's (the
        # backbone itself refuses a file with missing or misshapen keys)
        def fingerprints(state):
            return Counter((tuple(v.shape), float(v.double().sum())) for v in state.values())
        assert not fingerprints(backbone.state_dict()) - fingerprints(saved[name]), name


def test_a_changed_file_in_the_weights_folder_is_refused(weights_folder, tmp_path):
    from artseg_mm.models.backbones import TimmFeatureBackbone
    folder = tmp_path / 'folder'
    shutil.copytree(weights_folder[0], folder)
    index = json.loads((folder / INDEX_FILE).read_text())
    index['weights']['resnet50']['sha256'] = '0' * 64
    (folder / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(ValueError, match='sha256'):
        TimmFeatureBackbone('resnet50', pretrained=True, pretrained_dir=str(folder))


def test_an_unreachable_hub_stops_the_study_config_with_one_message(tiny_demo_root, tmp_path):
    proc = run_tool([PY, TRAIN, REPO / 'configs/swin_tiny_upernet_artefact.py',
                     '--work-dir', tmp_path / 'run', '--cfg-options',
                     *tiny_run_options(tiny_demo_root)],
                    env_extra=dict(OFFLINE, HF_HOME=str(tmp_path / 'empty_cache')),
                    check=False)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    for part in ('swin_tiny_patch4_window7_224', 'timm/swin_tiny_patch4_window7_224',
                 'HF_HUB_OFFLINE', 'fetch_pretrained.py', 'pretrained_dir',
                 'model.backbone.checkpoint_path=FILE'):
        assert part in message, part
    assert not (tmp_path / 'run').exists()  # stopped before any work


def test_an_unreachable_hub_is_named_by_the_backbone_too(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from artseg_mm.models.backbones import TimmFeatureBackbone
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path))
    with pytest.raises(PretrainedWeightsUnavailable, match='pretrained_dir'):
        TimmFeatureBackbone('resnet18', pretrained=True)


def test_a_missing_data_root_stops_with_one_line(tmp_path):
    proc = run_tool([PY, TRAIN, DEMO_CONFIG, '--work-dir', tmp_path / 'run', '--cfg-options',
                     *tiny_run_options(tmp_path / 'nowhere')], check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'does not exist' in proc.stderr.strip().splitlines()[-1]


def dry_run(config, data_root, *options, env=None):
    return run_tool([PY, TRAIN, config, '--dry-run', '--cfg-options',
                     *tiny_run_options(data_root), *options], env_extra=env, check=False)


def test_preflight_passes_on_the_demo_data_and_prints_the_plan(tiny_demo_root, tmp_path):
    proc = dry_run(DEMO_CONFIG, tiny_demo_root, *SMALL_MODEL_OPTIONS,
                   f'work_dir={tmp_path / "run"}')
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert 'preflight passed' in out
    assert 'train 1 epochs of 2 iterations (batch 2, 4 images)' in out
    assert 's per iteration (median of 3 real batches)' in out and 'take about' in out
    assert 'random initialisation (pretrained=False)' in out
    assert not (tmp_path / 'run').exists()  # nothing written into the run's work dir
    assert 'System environment' not in out + proc.stderr  # the timed runner's banner


@pytest.fixture
def copy_of(tiny_demo_root, tmp_path):
    def make(edit):
        root = tmp_path / 'root'
        shutil.copytree(tiny_demo_root, root)
        edit(root)
        return root
    return make


def test_preflight_names_a_data_root_of_the_other_label_mode(copy_of):
    def binary_masks(root):
        meta = json.loads((root / 'meta.json').read_text())
        meta[LABEL_MODE_KEY] = 'binary'  # as the converter's --label-mode binary writes
        (root / 'meta.json').write_text(json.dumps(meta))
    root = copy_of(binary_masks)
    proc = dry_run(REPO / 'configs/demo/convnext_tiny_upernet_demo_full.py', root,
                   f'model.decode_head.loss_decode.class_weight={root}/class_weights.json',
                   *SMALL_MODEL_OPTIONS)
    assert proc.returncode == 1
    assert 'FAIL training data' in proc.stdout and 'label_mode=full' in proc.stdout
    assert 'preflight FAILED' in proc.stdout


def test_preflight_names_a_missing_class_weights_file(copy_of):
    root = copy_of(lambda root: (root / 'class_weights.json').unlink())
    proc = dry_run(REPO / 'configs/demo/convnext_tiny_upernet_demo_full.py', root,
                   f'model.decode_head.loss_decode.class_weight={root}/class_weights.json',
                   *SMALL_MODEL_OPTIONS)
    assert proc.returncode == 1
    assert 'FAIL class weights' in proc.stdout and 'class_weights.json' in proc.stdout


def test_preflight_names_missing_pretrained_weights(tiny_demo_root, tmp_path):
    proc = dry_run(DEMO_CONFIG, tiny_demo_root, *SMALL_MODEL_OPTIONS,
                   'model.backbone.pretrained=True',
                   f'model.backbone.pretrained_dir={tmp_path}',
                   env=dict(OFFLINE, HF_HOME=str(tmp_path / 'empty_cache')))
    assert proc.returncode == 1
    assert 'FAIL pretrained weights' in proc.stdout and INDEX_FILE in proc.stdout


def test_preflight_names_a_fine_tune_without_its_start_weights(tiny_demo_root, tmp_path):
    roots = [f'{split}_dataloader.dataset.data_root={tiny_demo_root}'
             for split in ('train', 'val', 'test')]
    proc = run_tool([PY, TRAIN, REPO / 'configs/demo/convnext_tiny_upernet_demo_finetune.py',
                     '--dry-run', '--cfg-options', *roots, *SMALL_MODEL_OPTIONS,
                     f'work_dir={tmp_path / "run"}'], check=False)
    assert proc.returncode == 1
    assert 'FAIL fine-tune start' in proc.stdout and 'load_from=CHECKPOINT' in proc.stdout


def test_preflight_builds_an_mmseg_backbone_and_leaves_the_config_as_it_was(tiny_demo_root,
                                                                          tmp_path):
    from artseg_mm.engine.preflight import run_preflight
    cfg = Config.fromfile(REPO / 'configs/reference/swin_tiny_upernet_mmseg_demo.py')
    cfg.work_dir = str(tmp_path / 'run')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(tiny_demo_root)
    before = cfg.model.to_dict()
    report = run_preflight(cfg, time_steps=False)
    checks = {name: (ok, detail) for name, ok, detail in report.checks}
    assert checks['model'][0], checks['model'][1]  # mmseg's Swin refuses pretrained=False
    assert cfg.model.to_dict() == before


FETCH = REPO / 'tools/misc/fetch_pretrained.py'
RESNET_CONFIG = REPO / 'configs/resnet50_unet_artefact.py'


def test_fetch_refuses_a_local_file_of_another_model_and_an_unused_name(tmp_path):
    wrong = tmp_path / 'wrong.pth'
    torch.save({'conv.weight': torch.zeros(1)}, wrong)
    env = dict(OFFLINE, HF_HOME=str(tmp_path / 'empty_cache'))
    proc = run_tool([PY, FETCH, '--out', tmp_path / 'w', RESNET_CONFIG,
                     '--local', f'resnet50={wrong}'], env_extra=env, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f"--local resnet50={wrong}: not resnet50's classifier weights" in proc.stderr
    proc = run_tool([PY, FETCH, '--out', tmp_path / 'w', RESNET_CONFIG,
                     '--local', f'resnet18={wrong}'], env_extra=env, check=False)
    assert proc.returncode == 2 and '--local resnet18: no config here uses it' in proc.stderr


def test_fetch_without_the_hub_says_where_to_run_it(tmp_path):
    proc = run_tool([PY, FETCH, '--out', tmp_path / 'w', RESNET_CONFIG],
                    env_extra=dict(OFFLINE, HF_HOME=str(tmp_path / 'empty_cache')), check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'resnet50: cannot fetch its weights from timm/resnet50' in proc.stderr
    assert '--local resnet50=FILE' in proc.stderr


def test_weights_behind_a_plain_url_are_left_to_timm_not_refused(monkeypatch):
    import huggingface_hub.constants
    from timm.models import get_pretrained_cfg
    from artseg_mm.models.backbones.pretrained_weights import weights_source
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    url_only = next(name for name in timm.list_pretrained()
                    if not get_pretrained_cfg(name).hf_hub_id and get_pretrained_cfg(name).url)
    source = weights_source(dict(model_name=url_only, pretrained=True))
    assert source.kind == 'url' and source.location == get_pretrained_cfg(url_only).url
