"""artseg_mm.apis: one strict loader; mmseg's own inference APIs on our models."""
import numpy as np
import pytest
import torch

from apis_helpers import write_mismatched_checkpoint, write_work_dir


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return write_work_dir(tmp_path_factory.mktemp('apis'))


@pytest.fixture(scope='module')
def image_path(tiny_demo_root):
    return str(sorted((tiny_demo_root / 'img_dir' / 'val').glob('*.png'))[0])


def test_import_alone_works_in_a_fresh_interpreter():
    """``from artseg_mm.apis import ...`` in a fresh interpreter, nothing before."""
    from conftest import PY, run_tool
    proc = run_tool([PY, '-c', 'from artseg_mm.apis import init_model, inference_model, '
                     'ScanInferencer; import mmseg.apis; print("ok")'])
    assert proc.stdout.strip().endswith('ok')


def test_work_dir_gives_config_and_best_checkpoint(work_dir):
    from artseg_mm.apis import init_model, resolve_model_source
    cfg, checkpoint = resolve_model_source(str(work_dir))
    assert checkpoint.endswith('best_mIoU_epoch_1.pth')
    assert cfg.model.backbone.model_name == 'convnext_atto'
    model = init_model(str(work_dir), optimize=False)  # the weights as loaded
    assert not model.training
    assert model.dataset_meta['classes'] == ['Clean', 'Damage']
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key], msg=key)


def test_checkpoint_without_meta_takes_classes_from_config(work_dir, tmp_path):
    from artseg_mm.apis import init_model
    state = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)
    bare = tmp_path / 'bare.pth'
    torch.save(dict(state_dict=state['state_dict']), bare)
    model = init_model(str(work_dir / 'tiny_convnext.py'), str(bare))
    assert tuple(model.dataset_meta['classes']) == ('Clean', 'Damage')


def test_mismatched_checkpoint_names_the_keys(work_dir, tmp_path):
    from artseg_mm.apis import init_model
    from artseg_mm.checkpoints.matching import CheckpointMismatchError
    bad = tmp_path / 'bad.pth'
    key = write_mismatched_checkpoint(work_dir, bad)
    with pytest.raises(CheckpointMismatchError) as err:
        init_model(str(work_dir), str(bad))
    assert key in str(err.value) and 'decode_head.renamed_weight' in str(err.value)
    assert str(bad) in str(err.value)


def test_non_finite_weights_are_refused_with_the_tensor_names(work_dir, tmp_path):
    """A diverged or damaged checkpoint would predict one class everywhere, silently."""
    from artseg_mm.apis import init_model
    from artseg_mm.checkpoints.matching import CheckpointMismatchError
    state = torch.load(work_dir / 'best_mIoU_epoch_1.pth', weights_only=True)
    key = next(k for k in state['state_dict'] if k.startswith('decode_head.conv_seg'))
    state['state_dict'][key] = state['state_dict'][key].clone()
    state['state_dict'][key].view(-1)[0] = float('nan')
    broken = tmp_path / 'nan.pth'
    torch.save(state, broken)
    with pytest.raises(CheckpointMismatchError,
                       match=f'{broken}: non-finite weights \\(NaN or inf\\) in {key}'):
        init_model(str(work_dir), str(broken))


def test_missing_model_source_is_named(tmp_path):
    from artseg_mm.apis import init_model
    with pytest.raises(FileNotFoundError, match='no such work dir or config'):
        init_model(str(tmp_path / 'nowhere'))


def test_mmseg_apis_and_ours_give_the_same_mask(work_dir, image_path):
    """mmseg's init_model + inference_model (unpatched), ArtSegInferencer (mmseg's
    MMSegInferencer subclassed), our inference_model and ScanInferencer: one mask."""
    from mmseg.apis import inference_model as mmseg_inference_model
    from mmseg.apis import init_model as mmseg_init_model

    from artseg_mm.apis import (ArtSegInferencer, ScanInferencer, inference_model, init_model,
                                resolve_model_source)

    cfg, checkpoint = resolve_model_source(str(work_dir))
    ours = ScanInferencer(str(work_dir))(image_path)
    mmseg_model = mmseg_init_model(cfg, checkpoint, device='cpu')
    upstream = mmseg_inference_model(mmseg_model, image_path).pred_sem_seg.data[0].numpy()
    ours_api = inference_model(init_model(str(work_dir)), image_path)
    inferencer = ArtSegInferencer(model=cfg, weights=checkpoint, device='cpu')
    by_inferencer = inferencer(image_path, return_datasamples=True).pred_sem_seg.data[0]
    assert ours.dtype == np.uint8 and ours.shape == upstream.shape
    assert len(np.unique(ours)) == 2  # the seeded weights predict both classes
    np.testing.assert_array_equal(ours, upstream)
    np.testing.assert_array_equal(ours, ours_api.pred_sem_seg.data[0].numpy())
    np.testing.assert_array_equal(ours, by_inferencer.numpy())


def test_plain_mmseg_inferencer_names_the_step_it_misses(work_dir):
    """mmseg's MMSegInferencer itself is left as it is: on our configs it stops
    where it looks for the exact type name (the reason ArtSegInferencer exists)."""
    from mmseg.apis import MMSegInferencer

    from artseg_mm.apis import resolve_model_source
    cfg, checkpoint = resolve_model_source(str(work_dir))
    with pytest.raises(ValueError, match='LoadImageFromFile is not found'):
        MMSegInferencer(model=cfg, weights=checkpoint, device='cpu')
