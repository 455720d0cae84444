"""Model folders: every file package_model writes, the round trip through init_model,
tampered folders named, and what --force may replace."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch

from apis_helpers import write_work_dir
from package_helpers import data_root_options, write_packable_work_dir, write_test_tables


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory, tiny_demo_root):
    return write_packable_work_dir(tmp_path_factory.mktemp('package'), tiny_demo_root)


@pytest.fixture(scope='module')
def folder(work_dir, tmp_path_factory):
    from artseg_mm.apis.model_package import package_model
    out = tmp_path_factory.mktemp('shared') / 'tiny_model'
    package_model(work_dir, out)
    return out


@pytest.fixture(scope='module')
def image_path(tiny_demo_root):
    return str(sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0])


def copy_folder(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / folder.name)


def test_manifest_lists_every_file_with_its_sha256(folder):
    manifest = json.loads((folder / 'artseg_model.json').read_text())
    assert manifest['format'] == 'artseg-mm model folder' and manifest['format_version'] == 2
    on_disk = {p.name for p in folder.iterdir()} - {'artseg_model.json'}
    assert set(manifest['files']) == on_disk == {
        'config.json', 'model.safetensors', 'classes.json', 'data_summary.json', 'README.md',
        'test_metrics.json', 'test_per_class.csv', 'test_per_group.csv'}
    for name, digest in manifest['files'].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # readable as any new folder
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o666 & ~umask}


def test_weights_are_the_checkpoints_state_dict(folder, work_dir):
    from safetensors.torch import load_file
    weights = load_file(str(folder / 'model.safetensors'))
    saved = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)['state_dict']
    assert set(weights) == set(saved)
    for key, value in saved.items():
        assert torch.equal(weights[key], value), key


def test_config_fetches_nothing_and_keeps_the_data_paths(folder, work_dir, tiny_demo_root):
    from mmengine.config import Config
    run = Config.fromfile(str(work_dir / 'tiny_convnext.py'))
    assert run.model.backbone.pretrained is True  # what the run's config asked for
    shared = Config(json.loads((folder / 'config.json').read_text()))  # plain data
    assert shared.model.backbone.pretrained is False
    assert shared.model.backbone.checkpoint_path is None
    assert shared.load_from is None
    for split in ('train', 'val', 'test'):
        assert shared[f'{split}_dataloader'].dataset.data_root == str(tiny_demo_root)
    # the same settings; JSON has lists where the Python config had tuples
    assert shared.model.decode_head == json.loads(json.dumps(run.model.decode_head))


def test_classes_are_the_checkpoints(folder, work_dir):
    meta = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)['meta']
    classes = json.loads((folder / 'classes.json').read_text())
    assert classes == dict(classes=list(meta['dataset_meta']['classes']),
                           palette=meta['dataset_meta']['palette'])


def test_data_summary_counts_the_splits(folder, tiny_demo_root):
    summary = json.loads((folder / 'data_summary.json').read_text())
    for split, folder_name in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        expected = len(list((tiny_demo_root / 'img_dir' / folder_name).glob('*.png')))
        assert summary['splits'][split]['images'] == expected
    recorded = json.loads((tiny_demo_root / 'class_weights_binary.json').read_text())
    assert summary['records']['class_weights_binary.json'] == recorded
    assert list(summary['train_class_pixels'].values()) == recorded['pixel_counts']


def test_card_says_what_the_model_is_and_its_test_intervals(folder, work_dir):
    from artseg_mm.apis import init_model
    card = (folder / 'README.md').read_text()
    metrics = json.loads((work_dir / 'test' / 'metrics.json').read_text())
    m = metrics['metrics']
    params = sum(p.numel() for p in init_model(str(work_dir), optimize=False).parameters())
    assert f'{params:,}' in card and 'convnext_atto' in card and 'UPerFeatureHead' in card
    assert '| 0 | Clean | #000000 |' in card and '| 1 | Damage | #ff4040 |' in card
    assert f"on the {metrics['n_images']} images of the test split" in card
    assert (f"| mIoU | {m['mIoU']:.2f} | [{m['mIoU_ci_low']:.2f}, "
            f"{m['mIoU_ci_high']:.2f}] |") in card
    assert (f"| damage IoU | {m['damage_IoU']:.2f} | [{m['damage_IoU_ci_low']:.2f}, "
            f"{m['damage_IoU_ci_high']:.2f}] |") in card
    damage = metrics['per_class'][1]
    assert (f"| Damage | {damage['IoU']:.2f} [{damage['IoU_ci_low']:.2f}, "
            f"{damage['IoU_ci_high']:.2f}]") in card
    assert 'sliding windows of 64 x 64 px, stride 40 x 40' in card
    assert '128 x 128 px crops' in card and '12 epochs' in card
    assert 'validation split and the best checkpoint was chosen on it' in card
    assert 'Tables: `test_metrics.json`, `test_per_class.csv`, `test_per_group.csv`.' in card
    for line in ("init_model('tiny_model')", 'tools/infer.py SCANS --model tiny_model',
                 'hf upload USER/tiny_model tiny_model .',
                 "init_model(snapshot_download('USER/tiny_model'))"):
        assert line in card


def test_card_without_test_tables_says_so(work_dir, tmp_path):
    from artseg_mm.apis.model_package import package_model
    empty = tmp_path / 'no_tables'
    empty.mkdir()
    manifest = package_model(work_dir, tmp_path / 'm', metrics_dir=empty)
    card = (tmp_path / 'm' / 'README.md').read_text()
    assert f'No test tables: `{empty / "metrics.json"}` was not found' in card
    assert not any(name.startswith('test_') for name in manifest['files'])


def test_tables_of_another_label_set_are_refused(work_dir, tmp_path):
    from artseg_mm.apis.model_package import package_model
    tables = tmp_path / 'tables'
    shutil.copytree(work_dir / 'test', tables)
    metrics = json.loads((tables / 'metrics.json').read_text())
    metrics['classes'] = ['Clean', 'Material loss']
    (tables / 'metrics.json').write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r'metrics.json is for the classes'):
        package_model(work_dir, tmp_path / 'm', metrics_dir=tables)
    assert not (tmp_path / 'm').exists()


def test_tables_of_another_checkpoint_are_refused(work_dir, tmp_path):
    from artseg_mm.apis.model_package import package_model
    other = tmp_path / 'epoch_1.pth'
    shutil.copyfile(work_dir / 'best_mIoU_epoch_1.pth', other)
    tables = write_test_tables(tmp_path / 'tables', checkpoint=other)
    with pytest.raises(ValueError, match=f'holds the test of {other}, not of the packaged'):
        package_model(work_dir, tmp_path / 'm', metrics_dir=tables)
    package_model(work_dir, tmp_path / 'm', checkpoint=other, metrics_dir=tables)
    assert (tmp_path / 'm' / 'test_metrics.json').is_file()


def test_folder_gives_the_same_model_and_mask_as_the_work_dir(folder, work_dir, image_path):
    from artseg_mm.apis import ScanInferencer, init_model, resolve_model_source
    cfg, weights = resolve_model_source(str(folder))
    assert weights == str(folder / 'model.safetensors')
    assert cfg.model.backbone.model_name == 'convnext_atto'
    model = init_model(str(folder))
    assert model.dataset_meta == json.loads((folder / 'classes.json').read_text())
    expected = ScanInferencer(str(work_dir))(image_path)
    mask = ScanInferencer(model)(image_path)
    assert len(np.unique(expected)) == 2  # the seeded weights predict both classes
    np.testing.assert_array_equal(mask, expected)
    # a config and safetensors weights, as the tools taking CONFIG CKPT get them
    by_files = init_model(str(folder / 'config.json'), str(folder / 'model.safetensors'))
    for key, value in model.state_dict().items():
        assert torch.equal(by_files.state_dict()[key], value), key


def test_folder_of_links_loads_as_the_hub_cache_lays_it_out(folder, tmp_path):
    """``snapshot_download`` gives a folder of links to content-named blobs."""
    from artseg_mm.apis import init_model
    blobs, snapshot = tmp_path / 'blobs', tmp_path / 'snapshots' / 'main'
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        blob = blobs / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(blob)
    assert init_model(str(snapshot)).dataset_meta['classes'] == ['Clean', 'Damage']


def test_missing_weights_are_named(folder, tmp_path):
    from artseg_mm.apis import init_model
    copy = copy_folder(folder, tmp_path)
    (copy / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match=r'model.safetensors is missing'):
        init_model(str(copy))


def test_changed_weights_are_named(folder, work_dir, tmp_path):
    from safetensors.torch import save_file

    from artseg_mm.apis import init_model
    from artseg_mm.apis.model_folder import ModelFolderError
    copy = copy_folder(folder, tmp_path)
    other = write_work_dir(tmp_path / 'other', seed=1)
    state = torch.load(other / 'best_mIoU_epoch_1.pth', weights_only=True)['state_dict']
    save_file({k: v.contiguous() for k, v in state.items()}, str(copy / 'model.safetensors'))
    with pytest.raises(ModelFolderError) as err:
        init_model(str(copy))
    assert str(copy / 'model.safetensors') in str(err.value) and 'sha256' in str(err.value)


def test_weights_that_do_not_fit_name_the_file_and_keys(folder, tmp_path):
    """Weights re-hashed into the manifest but for another model: the strict
    loader's mismatch error, as for a checkpoint."""
    from safetensors.torch import load_file, save_file

    from artseg_mm.apis import init_model
    from artseg_mm.apis.model_folder import manifest_record
    from artseg_mm.checkpoints.matching import CheckpointMismatchError
    copy = copy_folder(folder, tmp_path)
    weights = copy / 'model.safetensors'
    state = load_file(str(weights))
    key = next(k for k in state if k.startswith('decode_head.conv_seg'))
    state['decode_head.renamed_weight'] = state.pop(key)
    save_file(state, str(weights))
    manifest = json.loads((copy / 'artseg_model.json').read_text())
    manifest['files'] = manifest_record(copy, list(manifest['files']))['files']
    (copy / 'artseg_model.json').write_text(json.dumps(manifest))
    with pytest.raises(CheckpointMismatchError) as err:
        init_model(str(copy))
    message = str(err.value)
    assert f'Checkpoint {weights} does not match the model' in message
    assert key in message and 'decode_head.renamed_weight' in message


def test_unreadable_safetensors_is_named(folder, tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.checkpoints import CorruptCheckpointError
    truncated = tmp_path / 'cut.safetensors'
    truncated.write_bytes((folder / 'model.safetensors').read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError, match=f'{truncated} is not a readable '
                       'safetensors file'):
        init_model(str(folder / 'config.json'), str(truncated))


def test_force_replaces_only_a_model_folder_it_wrote(work_dir, tmp_path, tiny_demo_root):
    from artseg_mm.apis.model_package import package_model
    out = tmp_path / 'model'
    package_model(work_dir, out)
    with pytest.raises(FileExistsError, match='not empty.*--force'):
        package_model(work_dir, out)
    # replaced in full: the tables of the first packaging are gone with --force
    empty = tmp_path / 'no_tables'
    empty.mkdir()
    package_model(work_dir, out, metrics_dir=empty, force=True)
    assert not (out / 'test_metrics.json').exists()
    assert 'No test tables' in (out / 'README.md').read_text()
    # a file the tool did not write stops --force, and stays
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match=r'did not write \(notes.txt\)'):
        package_model(work_dir, out, force=True)
    assert (out / 'notes.txt').read_text() == 'mine'
    # a folder without a manifest is never replaced
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'weights.pth').write_text('someone else')
    with pytest.raises(FileExistsError, match='has no artseg_model.json'):
        package_model(work_dir, foreign, force=True)
    assert (foreign / 'weights.pth').read_text() == 'someone else'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []
    # a link as --out would be replaced by a folder and its target left empty: refused
    target = tmp_path / 'target'
    target.mkdir()
    link = tmp_path / 'link'
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match=f'--out {link} is a symbolic link'):
        package_model(work_dir, link)
    assert link.is_symlink() and list(target.iterdir()) == []


def test_missing_data_root_is_said_in_the_card(tmp_path):
    """A work dir packaged where its data is not: the card says which root was
    missing instead of a data summary."""
    from artseg_mm.apis.model_package import package_model
    options = data_root_options(tmp_path / 'gone')
    work_dir = write_work_dir(tmp_path, cfg_options=options)
    package_model(work_dir, tmp_path / 'm')
    summary = json.loads((tmp_path / 'm' / 'data_summary.json').read_text())
    assert summary['found'] is False
    assert f"data root {tmp_path / 'gone'} not found" in (tmp_path / 'm' / 'README.md').read_text()


PAYLOAD = "open({marker!r}, 'w').write('ran')\n"


def rehash(folder):
    """What anyone publishing a folder can do: write the manifest's hashes anew."""
    from artseg_mm.apis.model_folder import manifest_record
    manifest = json.loads((folder / 'artseg_model.json').read_text())
    manifest['files'] = manifest_record(folder, list(manifest['files']))['files']
    (folder / 'artseg_model.json').write_text(json.dumps(manifest))
    return manifest


def test_a_shared_folder_never_runs_code_from_its_config(folder, tmp_path):
    """A folder whose config carries a payload, its manifest re-hashed: loading
    executes nothing, whatever form the payload takes."""
    from artseg_mm.apis import init_model
    from artseg_mm.apis.config_data import ConfigDataError
    from artseg_mm.apis.model_folder import ModelFolderError
    marker = tmp_path / 'payload_ran'
    # the version-1 layout: a Python config.py (what mmengine would execute)
    old = copy_folder(folder, tmp_path / 'v1')
    config = json.loads((old / 'config.json').read_text())
    (old / 'config.json').unlink()
    (old / 'config.py').write_text(PAYLOAD.format(marker=str(marker)) + f'model = {config["model"]!r}\n')
    manifest = json.loads((old / 'artseg_model.json').read_text())
    manifest['files'] = {('config.py' if k == 'config.json' else k): v
                         for k, v in manifest['files'].items()}
    manifest['format_version'] = 1
    (old / 'artseg_model.json').write_text(json.dumps(manifest))
    rehash(old)
    with pytest.raises(ModelFolderError, match='version 1 model folder, whose config is Python'):
        init_model(str(old))
    # Python text in config.json
    py_text = copy_folder(folder, tmp_path / 'pytext')
    (py_text / 'config.json').write_text(PAYLOAD.format(marker=str(marker)))
    rehash(py_text)
    with pytest.raises(ConfigDataError, match='the config is not JSON'):
        init_model(str(py_text))
    # JSON that asks to import another module, or to inherit a Python file
    for key, value, message in (('custom_imports', dict(imports=['os']), "names \\['os'\\]"),
                                ('_base_', ['evil.py'], 'cannot inherit other files')):
        crafted = copy_folder(folder, tmp_path / key)
        data = json.loads((crafted / 'config.json').read_text())
        data[key] = value
        (crafted / 'config.json').write_text(json.dumps(data))
        rehash(crafted)
        with pytest.raises(ConfigDataError, match=message):
            init_model(str(crafted))
    assert not marker.exists()


def test_classes_file_that_is_not_json_is_named(folder, tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.apis.model_folder import ModelFolderError
    broken = copy_folder(folder, tmp_path / 'broken')
    (broken / 'classes.json').write_text('{"classes": ["Clean", ')
    rehash(broken)
    with pytest.raises(ModelFolderError, match=f'{broken / "classes.json"} is not valid JSON'):
        init_model(str(broken))


def test_an_incomplete_model_folder_is_refused_not_read_as_a_work_dir(folder, tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.apis.model_folder import ModelFolderError
    marker = tmp_path / 'payload_ran'
    partial = copy_folder(folder, tmp_path / 'partial')
    (partial / 'artseg_model.json').unlink()
    # a work dir's config dump is Python: a folder like this must not be read as one
    (partial / 'run.py').write_text(PAYLOAD.format(marker=str(marker)))
    with pytest.raises(ModelFolderError, match='holds model folder files but no '
                                               'artseg_model.json'):
        init_model(str(partial))
    assert not marker.exists()
