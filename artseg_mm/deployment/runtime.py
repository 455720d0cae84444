"""Run an exported file (ONNX, TorchScript, torch.export) as a window model.

Why it exists: an exported file holds the network only; sliding-window
inference also needs the windows, the normalisation, the classes and the
palette. They travel in the file's metadata (see ``export.py``), so
``ExportedSegmentor(path)`` gives everything :class:`ScanInferencer` and
:func:`predict_class_ids` use from a PyTorch segmentor, with the forward pass
of each window batch run by onnxruntime, ``torch.jit.load`` or
``torch.export.load``.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from ..apis.config_data import config_from_json
from mmengine.logging import print_log

from ..apis.scan_inference import WindowModel, window_normaliser
from ..models.segmentors.sliding_window import window_blend
from .export import (CONFIG_KEY, DATASET_META_KEY, FORMATS, INPUT_NAME, INPUT_SIZE_KEY,
                     OUTPUT_NAME, SOURCE_KEY)

METADATA_KEYS = (CONFIG_KEY, DATASET_META_KEY, INPUT_SIZE_KEY, SOURCE_KEY)
_FORMAT_NAMES = {'onnx': 'an ONNX', 'torchscript': 'a TorchScript', 'exported': 'a torch.export'}


def export_format(path: str) -> str:
    """The format of an exported file, from its extension."""
    for fmt, ext in FORMATS.items():
        if str(path).lower().endswith(ext):
            return fmt
    raise ValueError(f'{path}: not an exported model (extensions: '
                     f'{", ".join(FORMATS.values())})')


def is_exported_model(path) -> bool:
    """Whether ``path`` names an exported model file (by its extension)."""
    return isinstance(path, (str, os.PathLike)) and any(
        str(path).lower().endswith(ext) for ext in FORMATS.values())


def _onnx_session(path: str, device: str):
    import onnxruntime as ort
    if str(device).startswith('cuda'):
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise RuntimeError(f'device {device}: this onnxruntime has no CUDA provider '
                               f'(it has {ort.get_available_providers()}); use device cpu')
        providers = ['CUDAExecutionProvider']
    else:
        providers = ['CPUExecutionProvider']
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(path, options, providers=providers)
    metadata = dict(session.get_modelmeta().custom_metadata_map)

    def run(inputs: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])
    return run, metadata


def _torch_module(path: str, fmt: str, device: str):
    if not str(device).startswith('cpu'):
        raise ValueError(f'{path}: {fmt} files are run on the CPU here; use device cpu')
    extra = {key: '' for key in METADATA_KEYS}
    if fmt == 'torchscript':
        module = torch.jit.load(path, map_location='cpu', _extra_files=extra)
    else:
        module = torch.export.load(path, extra_files=extra).module()
    metadata = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items() if v}

    @torch.no_grad()
    def run(inputs: torch.Tensor) -> torch.Tensor:
        return module(inputs)
    return run, metadata


class ExportedSegmentor:
    """An exported whole-image model with what inference needs from its metadata.

    Args:
        path: a ``.onnx``, ``.pt`` (TorchScript) or ``.pt2`` (torch.export) file
            written by :func:`export_model`.
        device: 'cpu', or 'cuda[:N]' for ONNX with onnxruntime's CUDA provider.
        cfg_options: overrides of the embedded config, e.g.
            ``{'model.test_cfg.batch_size': 8}``.

    Attributes: ``cfg`` (the embedded config), ``dataset_meta`` (classes and
    palette), ``test_cfg`` (windows, batch and ``window_blend``), ``out_channels``,
    ``fixed_size`` ((H, W) or None).
    """

    def __init__(self, path: str, device: str = 'cpu',
                 cfg_options: Optional[dict] = None) -> None:
        path = str(path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'exported model {path}: no such file')
        self.path = path
        self.format = export_format(path)
        try:
            if self.format == 'onnx':
                self._run, metadata = _onnx_session(path, device)
            else:
                self._run, metadata = _torch_module(path, self.format, device)
        except Exception as error:  # each runtime has its own types: name the file
            raise ValueError(f'{path}: cannot be read as {_FORMAT_NAMES[self.format]} file: '
                             f'{error}') from error
        missing = [k for k in (CONFIG_KEY, DATASET_META_KEY, INPUT_SIZE_KEY)
                   if k not in metadata]
        if missing:
            raise ValueError(f'{path}: the file lacks the metadata {missing}; export it '
                             'with tools/deployment/export.py')
        self.metadata: Dict[str, str] = metadata
        self.cfg = config_from_json(metadata[CONFIG_KEY], f'{path} (metadata {CONFIG_KEY})')
        if cfg_options:
            self.cfg.merge_from_dict(cfg_options)
        self.dataset_meta = json.loads(metadata[DATASET_META_KEY])
        size = metadata[INPUT_SIZE_KEY]
        self.fixed_size: Optional[Tuple[int, int]] = (
            None if size == 'dynamic' else tuple(int(s) for s in size.split('x')))
        self.device = torch.device('cpu')
        model_cfg = self.cfg.model
        # the whole test_cfg travels, window_blend with it: the exported file's
        # windows are blended as the PyTorch model's are
        self.test_cfg = dict(model_cfg.get('test_cfg') or {})
        try:
            window_blend(self.test_cfg)
        except ValueError as error:
            raise ValueError(f'{path}: {error} (the embedded config or cfg_options)') \
                from error
        if self.test_cfg.get('autocast_dtype'):
            print_log(f'{path}: test_cfg.autocast_dtype does not apply to an exported '
                      'model, which computes in float32', logger='current')
        head = model_cfg.decode_head
        self.out_channels = int(head.get('out_channels') or head['num_classes'])
        self.threshold = head.get('threshold') or 0.3
        self.data_preprocessor = self._build_preprocessor()

    def _build_preprocessor(self):
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope(self.cfg.get('default_scope', 'mmseg'))
        return MODELS.build(self.cfg.model.data_preprocessor)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised (N, 3, H, W) images -> (N, C, H, W) float32 logits."""
        if self.fixed_size is not None and tuple(inputs.shape[2:]) != self.fixed_size:
            h, w = self.fixed_size
            raise ValueError(
                f'{self.path} takes {h}x{w} inputs only (a fixed-size export), got '
                f'{inputs.shape[2]}x{inputs.shape[3]}: an image smaller than the window '
                'gives smaller windows; segment it with the PyTorch model (the work dir)')
        return self._run(inputs.float())

    def window_model(self) -> WindowModel:
        """The :class:`WindowModel` that ``predict_scan`` runs (with ``test_cfg``)."""
        return WindowModel(test_cfg=self.test_cfg, out_channels=self.out_channels,
                           threshold=self.threshold,
                           to_input=window_normaliser(self.data_preprocessor, self.device),
                           forward=self.forward, device=self.device)
