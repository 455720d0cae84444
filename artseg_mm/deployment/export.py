"""Export the whole-image model to ONNX, TorchScript or a torch.export program.

Why it exists: mmdeploy, OpenMMLab's exporter, needs full mmcv with compiled
ops, which does not build against this torch; the exporters of PyTorch itself
(``torch.onnx.export`` with its ``torch.export``-based path, ``torch.jit.trace``,
``torch.export``) handle these models once they are wrapped as
:class:`WholeImageLogits`. Each file carries what inference needs besides the
weights: the config (JSON: read as data, never run), the class names and palette, and its input size.

Input size: the batch is always dynamic (sliding-window batches vary); height
and width are dynamic where the encoder takes any size (ConvNeXt, Swin built
with ``strict_img_size=False``, ResNet) and fixed at the config's window
(``test_cfg.crop_size``) for an encoder built for one size (CoaT), and for
Swin in the torch.export format (see ``_fixed_size_reason``).
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from timm.models.swin_transformer import SwinTransformerBlock

from ..apis.config_data import config_to_json
from .exportable import WholeImageLogits

# format -> file extension
FORMATS = {'onnx': '.onnx', 'torchscript': '.pt', 'exported': '.pt2'}
INPUT_SIZES = ('auto', 'dynamic', 'fixed')
# metadata keys, the same in every format (ONNX metadata_props, extra files)
CONFIG_KEY = 'artseg_mm.config'
DATASET_META_KEY = 'artseg_mm.dataset_meta'
INPUT_SIZE_KEY = 'artseg_mm.input_size'
SOURCE_KEY = 'artseg_mm.source'
INPUT_NAME, OUTPUT_NAME = 'inputs', 'logits'
ONNX_OPSET = 18
EXAMPLE_BATCH = 2  # exporters specialise a traced size of 1: a batch of 2 keeps it dynamic


@dataclass
class ExportInfo:
    """What was written: the file, its format and the size it takes
    (``fixed_size`` None: any height and width)."""
    path: str
    format: str
    fixed_size: Optional[Tuple[int, int]]
    example_size: Tuple[int, int]

    @property
    def input_size(self) -> str:
        return 'dynamic' if self.fixed_size is None else 'x'.join(map(str, self.fixed_size))


def window_size(model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the model's inference window: ``test_cfg.crop_size`` in
    slide mode, else the encoder's fixed size or the preprocessor's size."""
    test_cfg = model.test_cfg or {}
    if test_cfg.get('mode', 'whole') == 'slide':
        return tuple(int(s) for s in test_cfg['crop_size'])
    fixed = getattr(model.backbone, 'fixed_size', None)
    if fixed is not None:
        return tuple(fixed)
    size = getattr(model.data_preprocessor, 'size', None)
    return tuple(int(s) for s in size) if size else (512, 512)


def _fixed_size_reason(model: nn.Module, fmt: str) -> Optional[str]:
    """Why ``model`` cannot be exported to ``fmt`` with a dynamic height and
    width, or None if it can."""
    backbone = model.backbone
    name = getattr(backbone, 'model_name', type(backbone).__name__)
    built_for = getattr(backbone, 'fixed_size', None)
    if built_for is not None:
        return (f'{name} is built for one input size, {built_for[0]}x{built_for[1]} '
                '(backbone img_size)')
    if fmt == 'exported' and any(isinstance(m, SwinTransformerBlock) for m in model.modules()):
        return (f'torch.export does not finish tracing {name} with a symbolic height and '
                'width (guards on its window padding; over 15 min on 2 CPU cores); its ONNX '
                'and TorchScript exports take any size')
    return None


def resolve_input_size(model: nn.Module, fmt: str, requested: str = 'auto'
                       ) -> Optional[Tuple[int, int]]:
    """None for a dynamic height and width, else the fixed (H, W) to export.

    ``requested``: 'auto' (dynamic where the encoder and format allow it),
    'dynamic' (an error where they do not) or 'fixed' (the window size).
    """
    if requested not in INPUT_SIZES:
        raise ValueError(f'input size must be one of {INPUT_SIZES}, got {requested!r}')
    reason = _fixed_size_reason(model, fmt)
    if reason is not None and requested == 'dynamic':
        raise ValueError(f'{reason}: it cannot be exported to {fmt} with a dynamic height '
                         f'and width. Export it fixed-size (input size auto or fixed), at '
                         f"the config's window {window_size(model)}")
    if requested == 'fixed' or reason is not None:
        return window_size(model)
    return None


def export_metadata(model: nn.Module, fixed_size: Optional[Tuple[int, int]]
                    ) -> Dict[str, str]:
    """Strings stored with the exported file: config (JSON), classes and palette
    (JSON), input size ('dynamic' or 'HxW') and the checkpoint it came from."""
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ValueError('the model carries no config (model.cfg); build it with '
                         'artseg_mm.apis.init_model')
    meta = getattr(model, 'dataset_meta', None) or {}
    if 'classes' not in meta or 'palette' not in meta:
        raise ValueError('the model carries no class names and palette '
                         '(model.dataset_meta); build it with artseg_mm.apis.init_model')
    dataset_meta = dict(classes=list(meta['classes']),
                        palette=[[int(v) for v in c] for c in meta['palette']])
    return {
        CONFIG_KEY: config_to_json(cfg),
        DATASET_META_KEY: json.dumps(dataset_meta),
        INPUT_SIZE_KEY: 'dynamic' if fixed_size is None else 'x'.join(map(str, fixed_size)),
        SOURCE_KEY: str(getattr(model, 'checkpoint_path', None) or 'untrained weights'),
    }


def _example(size: Tuple[int, int]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, 3, *size, generator=generator)


def _export_onnx(wrapper, example, dynamic: bool, metadata, out: str) -> None:
    dims = {0: 'batch', 2: 'height', 3: 'width'} if dynamic else {0: 'batch'}
    program = torch.onnx.export(
        wrapper, (example,), dynamo=True, opset_version=ONNX_OPSET, verbose=False,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes={'inputs': dims})
    program.model.metadata_props.update(metadata)
    program.save(out, external_data=False)


def _export_torchscript(wrapper, example, dynamic: bool, metadata, out: str) -> None:
    traced = torch.jit.trace(wrapper, example, check_trace=False)
    torch.jit.save(traced, out, _extra_files=metadata)


def _export_program(wrapper, example, dynamic: bool, metadata, out: str) -> None:
    free = torch.export.Dim.DYNAMIC
    dims = {0: free, 2: free, 3: free} if dynamic else {0: free}
    program = torch.export.export(wrapper, (example,), dynamic_shapes={'inputs': dims})
    torch.export.save(program, out, extra_files=metadata)


_EXPORTERS = {'onnx': _export_onnx, 'torchscript': _export_torchscript,
              'exported': _export_program}


@torch.no_grad()
def export_model(model: nn.Module, fmt: str, out: str, input_size: str = 'auto'
                 ) -> ExportInfo:
    """Write the whole-image model of a segmentor built by ``init_model`` to
    ``out`` in format ``fmt`` ('onnx', 'torchscript' or 'exported'), fp32, CPU."""
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {sorted(FORMATS)}, got {fmt!r}')
    if not str(out).lower().endswith(FORMATS[fmt]):
        raise ValueError(f'{out}: the {fmt} format writes {FORMATS[fmt]} files')
    out_dir = osp.dirname(osp.abspath(out))
    if not osp.isdir(out_dir):
        raise FileNotFoundError(f'output folder {out_dir} does not exist')
    fixed_size = resolve_input_size(model, fmt, input_size)
    example_size = fixed_size or window_size(model)
    metadata = export_metadata(model, fixed_size)
    wrapper = WholeImageLogits(model, generic_pooling=fmt == 'onnx').to('cpu').float()
    _EXPORTERS[fmt](wrapper, _example(example_size), fixed_size is None, metadata, out)
    if not osp.isfile(out) or os.path.getsize(out) == 0:
        raise RuntimeError(f'{fmt} export wrote no file at {out}')
    return ExportInfo(path=out, format=fmt, fixed_size=fixed_size,
                      example_size=tuple(example_size))
