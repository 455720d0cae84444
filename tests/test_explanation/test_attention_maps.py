"""Attention maps: Swin window attention (values, shifted-window mapping), CoaT's
factorized attention, the no-attention message, and the tool end to end."""
import math
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from analysis_helpers import REPO, build_backbone, load_tool, tiny_models  # noqa: F401


@pytest.fixture(scope='module')
def swin():
    torch.manual_seed(0)
    return timm.create_model('swin_tiny_patch4_window7_224', features_only=True,
                             strict_img_size=False, pretrained=False, embed_dim=24,
                             depths=(2, 2, 2, 2)).eval()


def _partition(x, wh, ww):
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def _reference_window_attention(block, x):
    """Swin-paper window attention for block input ``x`` (B, H, W, C), written
    here from the definitions: roll by -shift, pad to window multiples,
    softmax(q k^T / sqrt(d) + B_rel + region mask) per window."""
    attn = block.attn
    wh, ww = block.window_size
    sh, sw = block.shift_size
    b, H, W, C = x.shape
    y = block.norm1(x)
    if sh or sw:
        y = torch.roll(y, shifts=(-sh, -sw), dims=(1, 2))
    Hp, Wp = math.ceil(H / wh) * wh, math.ceil(W / ww) * ww
    y = F.pad(y, (0, 0, 0, Wp - W, 0, Hp - H))
    windows = _partition(y, wh, ww)
    n, heads = wh * ww, attn.num_heads
    qkv = attn.qkv(windows).reshape(windows.shape[0], n, 3, heads, -1)
    q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    # relative position bias: table row of (dy + wh-1) * (2ww-1) + (dx + ww-1)
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    idx = (ys[:, None] - ys[None] + wh - 1) * (2 * ww - 1) + (xs[:, None] - xs[None] + ww - 1)
    logits = logits + attn.relative_position_bias_table[idx].permute(2, 0, 1)[None]
    if sh or sw:  # tokens of different regions of the rolled, padded grid: -100
        region = torch.zeros(1, Hp, Wp, 1)
        cnt = 0
        for hs in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
            for ws in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
                region[:, hs, ws] = cnt
                cnt += 1
        r = _partition(region, wh, ww)[..., 0]
        mask = (r[:, None, :] != r[:, :, None]).float() * -100.0
        logits = logits.view(b, -1, heads, n, n) + mask[None, :, None]
        logits = logits.view(-1, heads, n, n)
    return logits.softmax(-1)


@pytest.mark.parametrize('stage,block', [(0, 0), (1, 1), (0, 1)])
def test_swin_hooked_attention_equals_reference(swin, stage, block):
    from artseg_mm.explanation.attention import find_attention_blocks, select_block, \
        swin_window_attention
    kind, blocks = find_attention_blocks(swin)
    assert kind == 'swin' and sorted(blocks) == [0, 1, 2, 3]
    name = select_block(blocks, stage, block)
    assert name == f'layers_{stage}.blocks.{block}'
    module = swin.get_submodule(name)
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 64, 96)
    seen = {}
    handle = module.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    result = swin_window_attention(swin, name, inputs, query_xy=(50.0, 20.0))
    handle.remove()
    with torch.no_grad():
        reference = _reference_window_attention(module, seen['x'])
    assert result.shift_size == tuple(module.shift_size)
    n_win = result.attn.shape[0]
    torch.testing.assert_close(result.attn, reference[:n_win], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(result.attn.sum(-1), torch.ones_like(result.attn[..., 0]))
    # the weights reproduce the module's own (fused-attention) output
    with torch.no_grad():
        windows = _partition(F.pad(torch.roll(module.norm1(seen['x']), tuple(
            -s for s in module.shift_size), (1, 2)) if any(module.shift_size)
            else module.norm1(seen['x']),
            (0, 0, 0, (-seen['x'].shape[2]) % 7, 0, (-seen['x'].shape[1]) % 7)), 7, 7)
        v = module.attn.qkv(windows).reshape(windows.shape[0], 49, 3, module.attn.num_heads,
                                             -1)[:, :, 2].transpose(1, 2)
        out = module.attn.proj((result.attn @ v[:n_win]).transpose(1, 2).reshape(n_win, 49, -1))
    torch.testing.assert_close(out, result.output[:n_win], atol=1e-5, rtol=1e-4)
    # the query row, laid on the grid: NaN outside its window; with the padding, sums to 1
    np.testing.assert_allclose(np.nansum(result.maps, axis=(1, 2)) + result.padding_mass,
                               1.0, atol=1e-5)


def test_swin_shifted_window_mapping_contains_query():
    """For a shifted block, the query's window is the one timm forms on the grid
    rolled by -shift: label every cell, roll/pad/partition the labels, compare."""
    from artseg_mm.explanation.attention import swin_window_cells
    H, W, win, shift = 8, 12, (7, 7), (3, 3)
    labels = torch.arange(H * W).view(1, H, W, 1)
    rolled = torch.roll(labels, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    padded = F.pad(rolled, (0, 0, 0, 14 - W, 0, 14 - H), value=-1)
    windows = _partition(padded, 7, 7)[..., 0]  # (num_windows, 49)
    for cell in [(0, 0), (6, 1), (7, 11), (4, 5), (2, 9)]:
        w_idx, q_idx, keys = swin_window_cells((H, W), win, shift, cell)
        expected = windows[w_idx].numpy()
        got = np.where(keys[:, 0] >= 0, keys[:, 0] * W + keys[:, 1], -1)
        np.testing.assert_array_equal(got, expected)
        assert tuple(keys[q_idx]) == cell  # the query sits inside its own window
    # not shifted: a plain 7x7 square from the top-left corner
    _, _, keys = swin_window_cells((H, W), win, (0, 0), (1, 2))
    real = keys[keys[:, 0] >= 0]
    assert real[:, 0].max() == 6 and real[:, 1].max() == 6 and len(real) == 49


def test_coat_key_softmax_is_a_distribution_per_head():
    from artseg_mm.explanation.attention import coat_factor_attention, find_attention_blocks, \
        select_block
    torch.manual_seed(0)
    backbone = build_backbone('coat').eval()  # built for 64x96; fed 48x80 (padded)
    kind, blocks = find_attention_blocks(backbone)
    assert kind == 'coat' and sorted(blocks) == [0, 1, 2, 3]
    name = select_block(blocks, 1, -1)
    assert name.endswith('serial_blocks2.1.factoratt_crpe')
    module = backbone.get_submodule(name)
    seen = {}
    handle = module.register_forward_hook(lambda m, a, o: seen.update(x=a[0], out=o))
    inputs = torch.randn(1, 3, 48, 80)
    result = coat_factor_attention(backbone, name, inputs, query_xy=(70.0, 10.0))
    handle.remove()
    heads = module.num_heads
    assert result.grid_hw == (8, 12) and result.stride == 8
    assert result.valid_hw == (6, 10)          # the rest of the grid is padding
    assert result.query_cell == (1, 8)
    total = result.key_softmax.sum(axis=(1, 2)) + result.key_softmax_cls
    np.testing.assert_allclose(total, np.ones(heads), atol=1e-5)
    assert (result.padding_mass > 0).all()
    # implied query weights: sum_n w_n v_n equals scale * q (softmax_N(K)^T V)
    x = seen['x']
    b, n, c = x.shape
    with torch.no_grad():
        q, k, v = module.qkv(x).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        token = 1 + result.query_cell[0] * 12 + result.query_cell[1]
        factor = module.scale * (q @ (k.softmax(dim=2).transpose(-1, -2) @ v))
    w = np.concatenate([result.query_weights_cls[:, None],
                        result.query_weights.reshape(heads, -1)], axis=1)
    implied = np.einsum('hn,hnc->hc', w, v[0].numpy())
    np.testing.assert_allclose(implied, factor[0, :, token].numpy(), atol=1e-5, rtol=1e-4)
    for m in (result.crpe_magnitude, result.factor_magnitude):
        assert m.shape == (heads, 8, 12) and (m >= 0).all()


def test_convnext_has_no_attention_message():
    from artseg_mm.explanation.attention import NoAttentionError, find_attention_blocks
    with pytest.raises(NoAttentionError, match='has no attention layers') as err:
        find_attention_blocks(build_backbone('convnext'))
    assert 'tools/analysis_tools/visualization_cam.py' in str(err.value)
    assert 'convnext_atto' in str(err.value)


def test_block_selection_errors(swin):
    from artseg_mm.explanation.attention import find_attention_blocks, select_block
    _, blocks = find_attention_blocks(swin)
    with pytest.raises(ValueError, match=r'stage 7 does not exist; stages with attention: '
                                         r'\[0, 1, 2, 3\]'):
        select_block(blocks, 7, 0)
    with pytest.raises(ValueError, match='stage 1, which has 2 blocks'):
        select_block(blocks, 1, 2)


@pytest.mark.parametrize('kind,suffixes', [
    ('swin', ['swin_window_attention']),
    ('coat', ['coat_keys', 'coat_query_weights', 'coat_crpe'])])
def test_attention_tool_end_to_end(kind, suffixes, tiny_models, tmp_path, capsys):
    from PIL import Image
    tool = load_tool('visualize_attention')
    files = tiny_models(kind)
    rc = tool.main([str(files['config']), str(files['checkpoint']), str(files['image']),
                    '--out', str(tmp_path), '--stage', '1', '--block', '-1',
                    '--query', '30', '20', '--heads', 'all'])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    for suffix in suffixes:
        path = tmp_path / f'{files["image"].stem}_{kind}_tiny_s1b1_{suffix}.png'
        assert path.is_file(), printed.out
        assert min(Image.open(path).size) > 100
    rc = tool.main([str(files['config']), str(files['checkpoint']), str(files['image']),
                    '--out', str(tmp_path), '--query', '500', '20'])
    assert rc == 2 and 'outside the image' in capsys.readouterr().err


def test_attention_tool_window_of_a_fixed_size_coat(tiny_models, tmp_path, capsys):
    """CoaT built for 32x64 sees a 32x64 window of the 64x96 image, centred on the
    query; --whole is refused with a clear message."""
    from PIL import Image
    tool = load_tool('visualize_attention')
    files = tiny_models('coat')
    args = [str(files['config']), str(files['checkpoint']), str(files['image']),
            '--out', str(tmp_path), '--stage', '0', '--query', '30', '20', '--heads', 'mean',
            '--cfg-options', 'model.backbone.img_size=(32,64)']
    rc = tool.main(args)
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    path = tmp_path / f'{files["image"].stem}_coat_tiny_s0b1_coat_keys.png'
    assert path.is_file() and min(Image.open(path).size) > 100
    from artseg_mm.explanation.cam import load_segmentor, prepare_image
    model = load_segmentor(files['config'], files['checkpoint'],
                           cfg_options={'model.backbone.img_size': (32, 64)})
    image = prepare_image(model, files['image'], center_xy=(30, 20))
    assert image.region == (0, 4, 64, 36) and image.rgb.shape == (32, 64, 3)
    assert image.to_input_xy((30, 20)) == (30, 16)
    rc = tool.main(args + ['--whole'])
    err = capsys.readouterr().err
    assert rc == 2 and 'does not fit the backbone, built for 32x64' in err


def test_attention_tool_on_convnext_says_so_without_traceback(tiny_models, tmp_path):
    """Run as users do (a fresh interpreter; the config's custom_imports)."""
    files = tiny_models('convnext')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/visualize_attention.py'),
         str(files['config']), str(files['checkpoint']), str(files['image']),
         '--out', str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3
    assert 'has no attention layers' in proc.stderr
    assert 'visualization_cam.py' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not list(tmp_path.glob('*.png'))


@pytest.fixture(scope='module')
def study_swin():
    """The Swin-T of configs/swin_tiny_upernet_artefact.py, untrained."""
    from conftest import build_study_model
    torch.manual_seed(0)
    return build_study_model('swin_tiny_upernet').eval()


def test_swin_attention_of_the_study_model_equals_reference(study_swin):
    """Every block of the config's Swin-T: the weights equal the Swin-paper
    reference; timm's fused kernel and the model's hooks and mode are as before."""
    from artseg_mm.explanation.attention import find_attention_blocks, swin_window_attention
    _, blocks = find_attention_blocks(study_swin)
    names = [name for stage in sorted(blocks) for name in blocks[stage]]
    assert len(names) == 12
    inputs = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    study_swin.train()
    for index, name in enumerate(names):
        module = study_swin.get_submodule(name)
        module.attn.fused_attn = index % 2 == 1  # as with TIMM_FUSED_ATTN=2
        seen = {}
        handle = module.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
        result = swin_window_attention(study_swin, name, inputs)
        handle.remove()
        with torch.no_grad():
            reference = _reference_window_attention(module.eval(), seen['x'])
        torch.testing.assert_close(result.attn, reference[:result.attn.shape[0]],
                                   atol=1e-5, rtol=1e-4)
        assert module.attn.fused_attn == (index % 2 == 1)
        assert study_swin.training
        study_swin.train()
        assert not any(m._forward_hooks or m._forward_pre_hooks
                       for m in study_swin.modules())
    study_swin.eval()


def test_swin_window_cells_of_every_cell():
    """For every cell of grids that need padding or not, shifted or not: the
    window and key cells are those of a roll, pad and row-major partition."""
    from artseg_mm.explanation.attention import swin_window_cells
    for H, W, win, shift in [(8, 12, (7, 7), (3, 3)), (14, 7, (7, 7), (3, 3)),
                             (5, 9, (3, 4), (1, 2)), (16, 16, (7, 7), (0, 0)),
                             (2, 3, (7, 7), (3, 3))]:
        labels = torch.roll(torch.arange(H * W).view(1, H, W, 1),
                            shifts=(-shift[0], -shift[1]), dims=(1, 2))
        padded = F.pad(labels, (0, 0, 0, (-W) % win[1], 0, (-H) % win[0]), value=-1)
        windows = _partition(padded, *win)[..., 0]
        for r in range(H):
            for c in range(W):
                w_idx, q_idx, keys = swin_window_cells((H, W), win, shift, (r, c))
                got = np.where(keys[:, 0] >= 0, keys[:, 0] * W + keys[:, 1], -1)
                np.testing.assert_array_equal(got, windows[w_idx].numpy())
                assert got[q_idx] == r * W + c
