"""What the attention layers of timm's Swin and CoaT backbones look at.

The functions take any ``nn.Module`` (an mmseg segmentor, its backbone, or a
bare timm ``features_only`` model) and the dotted name of one block inside it,
run one forward pass with hooks, and lay the block's attention on the feature
grid around a query pixel.

* Swin (:func:`swin_window_attention`): timm's ``AttentionExtract`` captures
  the block's window attention weights, ``softmax(q k^T * scale +
  relative_position_bias + mask)``, at ``WindowAttention.attn_drop`` (timm's
  non-fused path, used for the capture). The query's window is mapped back to
  the un-shifted, un-padded feature grid (:func:`swin_window_cells`): for a
  shifted block the window is taken on the grid rolled by ``-shift_size``, so
  in image coordinates it may wrap around the borders. timm's -100 mask
  separates the wrapped-around keys only where the grid is a multiple of the
  window: it is built on the padded grid, so when padding is needed, keys that
  wrapped around can keep real weight (the map shows what the model does).
  Keys that are padding have no image position: their weight is reported as
  ``padding_mass``.
* CoaT (:func:`coat_factor_attention`): see its docstring.
* ConvNeXt / ResNet have no attention: :func:`find_attention_blocks` raises
  :class:`NoAttentionError` saying so (Grad-CAM is the tool for them).
"""
import math
import re
import textwrap
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .cam import AnalysisInputError

_SWIN_BLOCK_RE = re.compile(r'(?:^|\.)layers[._](\d+)\.blocks\.(\d+)$')
_COAT_ATTN_RE = re.compile(r'(?:^|\.)serial_blocks(\d+)\.(\d+)\.factoratt_crpe$')
CAM_TOOL = 'tools/analysis_tools/visualization_cam.py'


class NoAttentionError(RuntimeError):
    """The model has no attention layer this module can read."""


# --------------------------------------------------------------------------- #
# Finding blocks
# --------------------------------------------------------------------------- #
def find_attention_blocks(model: nn.Module) -> Tuple[str, Dict[int, List[str]]]:
    """``('swin' | 'coat', {stage: [block names in order]})`` (stages 0-based).

    Swin blocks are timm ``SwinTransformerBlock`` (``layers_<i>.blocks.<j>``);
    CoaT blocks are the ``FactorAttnConvRelPosEnc`` of ``serial_blocks<i+1>.<j>``.
    Raises :class:`NoAttentionError` for models without them, naming any
    other attention-like modules it saw.
    """
    from timm.models.coat import FactorAttnConvRelPosEnc
    from timm.models.swin_transformer import SwinTransformerBlock

    found = {'swin': {}, 'coat': {}}
    others = set()
    for name, module in model.named_modules():
        if isinstance(module, SwinTransformerBlock):
            m = _SWIN_BLOCK_RE.search(name)
            if m:
                found['swin'].setdefault(int(m.group(1)), []).append((int(m.group(2)), name))
                continue
        if isinstance(module, FactorAttnConvRelPosEnc):
            m = _COAT_ATTN_RE.search(name)
            if m:
                found['coat'].setdefault(int(m.group(1)) - 1, []).append(
                    (int(m.group(2)), name))
                continue
        if 'attention' in type(module).__name__.lower() and not isinstance(
                module, (SwinTransformerBlock, FactorAttnConvRelPosEnc)):
            others.add(type(module).__name__)
    for kind in ('swin', 'coat'):
        if found[kind]:
            return kind, {s: [n for _, n in sorted(b)] for s, b in sorted(found[kind].items())}
    backbone = getattr(model, 'backbone', model)
    desc = getattr(backbone, 'model_name', type(backbone).__name__)
    if others:
        raise NoAttentionError(
            f'{desc}: its attention modules ({", ".join(sorted(others))}) are not ones '
            f'this tool reads (timm Swin window attention, CoaT factorized '
            f'attention). Use {CAM_TOOL} for a Grad-CAM instead.')
    raise NoAttentionError(
        f'{desc} has no attention layers (a convolutional network such as ConvNeXt '
        f'or ResNet): there is no attention map to show. Use {CAM_TOOL} for a '
        f'Grad-CAM of what drives its predictions.')


def select_block(blocks: Dict[int, List[str]], stage: int, block: int) -> str:
    """Name of block ``block`` (negative counts from the end) of ``stage``."""
    if stage not in blocks:
        raise AnalysisInputError(f'stage {stage} does not exist; stages with attention: '
                                 f'{sorted(blocks)}')
    names = blocks[stage]
    if not -len(names) <= block < len(names):
        raise AnalysisInputError(
            f'block {block} does not exist in stage {stage}, which has {len(names)} '
            f'blocks (0..{len(names) - 1}, or negative)')
    return names[block]


def _run(model: nn.Module, inputs: Tensor) -> None:
    with torch.no_grad():
        if hasattr(model, 'extract_feat'):  # an mmseg segmentor
            model.extract_feat(inputs)
        else:
            model(inputs)


def infer_stride(input_hw: Tuple[int, int], grid_hw: Tuple[int, int]) -> int:
    """Power-of-two stride of a token grid over an input (a fixed-size
    backbone such as CoaT may pad the input, so the larger ratio decides)."""
    ratio = max(input_hw[0] / grid_hw[0], input_hw[1] / grid_hw[1])
    return int(2 ** round(math.log2(ratio)))


def query_cell(query_xy: Optional[Tuple[float, float]], input_hw: Tuple[int, int],
               grid_hw: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """Grid cell (row, col) of pixel ``(x, y)`` of the input (default: centre)."""
    if query_xy is None:
        query_xy = ((input_hw[1] - 1) / 2, (input_hw[0] - 1) / 2)
    x, y = query_xy
    if not (0 <= x < input_hw[1] and 0 <= y < input_hw[0]):
        raise AnalysisInputError(f'query ({x}, {y}) lies outside the {input_hw[1]}x'
                                 f'{input_hw[0]} (width x height) input')
    return (min(int(y // stride), grid_hw[0] - 1), min(int(x // stride), grid_hw[1] - 1))


# --------------------------------------------------------------------------- #
# Swin
# --------------------------------------------------------------------------- #
def swin_window_cells(grid_hw: Tuple[int, int], window_size: Tuple[int, int],
                      shift_size: Tuple[int, int], cell: Tuple[int, int]
                      ) -> Tuple[int, int, np.ndarray]:
    """Where timm's (shifted) window partition puts a grid cell.

    timm rolls the ``(H, W)`` grid by ``-shift`` (``torch.roll``), pads it at
    the bottom/right to multiples of the window, and partitions it with
    ``window_partition``; the same steps on a grid of cell numbers find the
    cell. Returns ``(window_index, index_in_window, key_cells)`` where
    ``key_cells`` is ``(wh*ww, 2)``: each key's (row, col) on the original
    grid, ``-1`` for padding.
    """
    from timm.models.swin_transformer import window_partition
    H, W = grid_hw
    wh, ww = window_size
    numbers = torch.roll(torch.arange(H * W).view(1, H, W, 1),
                         shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    numbers = F.pad(numbers, (0, 0, 0, (-W) % ww, 0, (-H) % wh), value=-1)
    windows = window_partition(numbers, (wh, ww)).reshape(-1, wh * ww).numpy()
    window_index, query_index = (int(i) for i in np.argwhere(windows == cell[0] * W + cell[1])[0])
    keys = windows[window_index]
    key_cells = np.where(keys[:, None] >= 0, np.stack([keys // W, keys % W], axis=1), -1)
    return window_index, query_index, key_cells.astype(np.int64)


@dataclass
class SwinAttentionResult:
    """Window attention of one Swin block, for batch item 0."""
    block_name: str
    attn: Tensor                 # (num_windows, heads, N, N), rows sum to 1
    output: Tensor               # the WindowAttention module's output (num_windows*B, N, C)
    grid_hw: Tuple[int, int]
    window_size: Tuple[int, int]
    shift_size: Tuple[int, int]
    stride: int
    query_cell: Tuple[int, int]
    window_index: int
    query_index: int
    key_cells: np.ndarray        # (N, 2), -1 for padding
    weights: np.ndarray          # (heads, N): the query's attention row
    maps: np.ndarray             # (heads, H, W): weights at key cells, NaN elsewhere
    padding_mass: np.ndarray     # (heads,): weight on padding keys


def swin_window_attention(model: nn.Module, block_name: str, inputs: Tensor,
                          query_xy: Optional[Tuple[float, float]] = None
                          ) -> SwinAttentionResult:
    """Attention of the query pixel ``(x, y)`` of ``inputs`` in one Swin block.

    Args:
        model: a module containing the block (segmentor, backbone, timm model).
        block_name: dotted name of a timm ``SwinTransformerBlock`` in ``model``.
        inputs: the network input ``(B, 3, H, W)``; only item 0 is read.
        query_xy: pixel (x, y) of ``inputs``; default its centre.
    """
    from timm.utils import AttentionExtract
    block = model.get_submodule(block_name)
    captured = {}

    def pre_hook(_, args):
        captured['block_in'] = args[0].shape

    def attn_hook(module, args, output):
        captured['output'] = output

    weights_name = f'{block_name}.attn.attn_drop'  # applied to the softmax output
    training, fused = model.training, block.attn.fused_attn
    block.attn.fused_attn = False  # the fused kernel never forms the weights
    handles = [block.register_forward_pre_hook(pre_hook),
               block.attn.register_forward_hook(attn_hook)]
    try:
        extract = AttentionExtract(model, names=[weights_name], method='hook')  # sets eval()
        # timm's FeatureHooks keeps its hooks for good: removed below with ours
        handles += extract.hooks._handles
        with torch.no_grad():
            attn = extract(inputs).get(weights_name)
    finally:
        for h in handles:
            h.remove()
        block.attn.fused_attn = fused
        model.train(training)
    if attn is None:
        raise RuntimeError(f'{block_name} did not run in the forward pass (is it in an '
                           f'out_indices stage the model computes?)')
    _, H, W, _ = captured['block_in']
    window_size = tuple(int(v) for v in block.window_size)
    shift_size = tuple(int(v) for v in block.shift_size)
    num_windows = math.ceil(H / window_size[0]) * math.ceil(W / window_size[1])
    attn = attn[:num_windows]  # batch item 0
    stride = infer_stride(tuple(inputs.shape[2:]), (H, W))
    cell = query_cell(query_xy, tuple(inputs.shape[2:]), (H, W), stride)
    win, qi, keys = swin_window_cells((H, W), window_size, shift_size, cell)
    weights = attn[win, :, qi, :].cpu().numpy()  # (heads, N)
    heads = weights.shape[0]
    maps = np.full((heads, H, W), np.nan, dtype=np.float32)
    real = keys[:, 0] >= 0
    maps[:, keys[real, 0], keys[real, 1]] = weights[:, real]
    return SwinAttentionResult(
        block_name, attn, captured['output'], (H, W), window_size, shift_size, stride,
        cell, win, qi, keys, weights, maps, weights[:, ~real].sum(axis=1))


# --------------------------------------------------------------------------- #
# CoaT
# --------------------------------------------------------------------------- #
@dataclass
class CoatAttentionResult:
    """What one CoaT factorized-attention layer computes, for batch item 0.

    All maps are ``(heads, H, W)`` on the layer's token grid (the class token
    dropped; its share is given separately).
    """
    block_name: str
    grid_hw: Tuple[int, int]
    stride: int
    valid_hw: Tuple[int, int]     # grid cells covering the unpadded input
    query_cell: Tuple[int, int]
    key_softmax: np.ndarray       # per head, mean over channels of softmax_N(K)
    key_softmax_cls: np.ndarray   # (heads,) class-token share of key_softmax
    query_weights: np.ndarray     # implied weights of the query token on each token
    query_weights_cls: np.ndarray  # (heads,)
    crpe_magnitude: np.ndarray    # ||q ⊙ depthwise-conv(v)|| per token
    factor_magnitude: np.ndarray  # ||scale * q (softmax(K)^T V)|| per token
    padding_mass: np.ndarray      # (heads,): key_softmax on padding cells


def coat_factor_attention(model: nn.Module, block_name: str, inputs: Tensor,
                          query_xy: Optional[Tuple[float, float]] = None
                          ) -> CoatAttentionResult:
    """Read CoaT's factorized attention (timm ``FactorAttnConvRelPosEnc``).

    CoaT computes, per head, ``out = scale * q (softmax_N(K)^T V) + q ⊙ conv(V)``:
    the softmax runs over the N tokens separately for every key channel, and
    ``softmax(K)^T V`` is a ``(C_h, C_h)`` summary of the whole image; no
    ``N x N`` attention matrix is ever formed or normalised. The maps returned:

    * ``key_softmax``: for each head, the mean over its channels of
      ``softmax_N(K)``: a distribution over tokens (it and ``key_softmax_cls``
      sum to 1 per head). It says which positions dominate the global summary
      the head passes to *every* query; it is query-independent and is *not*
      where a particular query looks.
    * ``query_weights``: the algebraically exact weights of the query token's
      output on each token's value, ``w_n = scale * q_query . softmax_N(K)_n``
      (because ``q (Kσ^T V) = (q Kσ^T) V``). Unlike softmax attention they are
      not normalised, can be negative, and do not sum to 1; they leave out the
      local ``crpe`` term.
    * ``crpe_magnitude`` / ``factor_magnitude``: per-token norms of the two
      terms of the output (the local convolutional relative-position term and
      the global factorized term), to compare where each dominates.

    Ours rather than timm's ``AttentionExtract``: that captures only
    ``softmax_N(K)`` (a traced graph node of the bare timm model), and these
    maps need the layer's q, v and ``crpe`` of the same pass.
    """
    attn_module = model.get_submodule(block_name)
    captured = {}

    def hook(module, args, kwargs, output):
        x = args[0]
        size = kwargs.get('size', args[1] if len(args) > 1 else None)
        b, n, c = x.shape
        qkv = module.qkv(x).reshape(b, n, 3, module.num_heads, c // module.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, h, N, Ch)
        k_soft = k.softmax(dim=2)
        captured.update(
            size=tuple(size), q=q[0], k_soft=k_soft[0], scale=module.scale,
            factor=(module.scale * (q @ (k_soft.transpose(-1, -2) @ v)))[0],
            crpe=module.crpe(q, v, size=size)[0])

    handle = attn_module.register_forward_hook(hook, with_kwargs=True)
    try:
        _run(model, inputs)
    finally:
        handle.remove()
    if 'k_soft' not in captured:
        raise RuntimeError(f'{block_name} did not run in the forward pass')
    H, W = captured['size']
    input_hw = tuple(inputs.shape[2:])
    stride = infer_stride(input_hw, (H, W))
    valid = (min(H, math.ceil(input_hw[0] / stride)), min(W, math.ceil(input_hw[1] / stride)))
    cell = query_cell(query_xy, input_hw, (H, W), stride)
    k_soft = captured['k_soft']                 # (h, N, Ch)
    key_soft = k_soft.mean(dim=-1)              # (h, N)
    q_query = captured['q'][:, 1 + cell[0] * W + cell[1], :]          # (h, Ch)
    q_weights = captured['scale'] * torch.einsum('hc,hnc->hn', q_query, k_soft)

    def grid(t: Tensor) -> np.ndarray:
        return t[:, 1:].reshape(t.shape[0], H, W).cpu().numpy()

    key_grid = grid(key_soft)
    pad = key_grid.sum(axis=(1, 2)) - key_grid[:, :valid[0], :valid[1]].sum(axis=(1, 2))
    return CoatAttentionResult(
        block_name, (H, W), stride, valid, cell,
        key_grid, key_soft[:, 0].cpu().numpy(),
        grid(q_weights), q_weights[:, 0].cpu().numpy(),
        grid(captured['crpe'].norm(dim=-1)), grid(captured['factor'].norm(dim=-1)), pad)


# --------------------------------------------------------------------------- #
# From the grid to the image
# --------------------------------------------------------------------------- #
def grid_to_image(maps: np.ndarray, stride: int, img_shape: Tuple[int, int],
                  ori_shape: Tuple[int, int]) -> np.ndarray:
    """``(k, H, W)`` grid maps -> ``(k, h0, w0)`` on the original image.

    Each cell covers ``stride x stride`` input pixels; the input's top-left
    ``img_shape`` is the resized image (the rest is padding), which is then
    resized (nearest) back to ``ori_shape``.
    """
    import cv2
    up = np.repeat(np.repeat(maps, stride, axis=1), stride, axis=2)
    h, w = img_shape
    up = up[:, :h, :w]
    if up.shape[1] < h or up.shape[2] < w:  # grid floor()-ed the input
        up = np.pad(up, ((0, 0), (0, h - up.shape[1]), (0, w - up.shape[2])),
                    mode='edge')
    if (h, w) == tuple(ori_shape):
        return up
    return np.stack([cv2.resize(m, (ori_shape[1], ori_shape[0]),
                                interpolation=cv2.INTER_NEAREST) for m in up])


def save_map_grid(path, rgb: np.ndarray, maps: Sequence[np.ndarray],
                  titles: Sequence[str], query_xy: Tuple[float, float], suptitle: str,
                  cmap: str = 'inferno', symmetric: bool = False, from_zero: bool = True,
                  outline: Optional[np.ndarray] = None, ncols: int = 4) -> None:
    """Image with the query marker, then one overlay panel per map (NaN = no value).

    Colour scale per panel: ``[-max|m|, max|m|]`` if ``symmetric``, else
    ``[0, max]`` (``from_zero``) or ``[min, max]`` (for nearly uniform maps).

    ``outline``: a boolean image-size mask drawn as a contour on every panel
    (e.g. the query's attention window).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = 1 + len(maps)
    ncols = min(ncols, panels)
    nrows = math.ceil(panels / ncols)
    width_chars = int(3.6 * ncols * 11)  # ~11 characters per inch at fontsize 10
    suptitle = '\n'.join(textwrap.fill(line, width_chars) for line in suptitle.split('\n'))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows + 0.2 * suptitle.count('\n')),
        squeeze=False, constrained_layout=True)
    axes = axes.ravel()

    def mark(ax):
        ax.plot([query_xy[0]], [query_xy[1]], marker='+', color='cyan',
                markersize=14, markeredgewidth=2.5)
        if outline is not None and outline.any():
            ax.contour(outline.astype(np.uint8), levels=[0.5], colors='cyan',
                       linewidths=1.0)

    axes[0].imshow(rgb)
    mark(axes[0])
    axes[0].set_title('image, query (+)', fontsize=9)
    for ax, m, title in zip(axes[1:], maps, titles):
        ax.imshow(rgb, alpha=0.55)
        masked = np.ma.masked_invalid(m)
        if symmetric:
            lim = float(np.nanmax(np.abs(m))) or 1.0
            vmin, vmax = -lim, lim
        else:
            vmin = 0.0 if from_zero else float(np.nanmin(m))
            vmax = float(np.nanmax(m))
            vmax = vmax if vmax > vmin else vmin + 1.0
        im = ax.imshow(masked, cmap=cmap, alpha=0.75, vmin=vmin, vmax=vmax,
                       interpolation='nearest')
        mark(ax)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(suptitle, fontsize=10)
    fig.savefig(str(path), dpi=90)
    plt.close(fig)
