"""Build a trained segmentor for inference: the one loader every tool uses.

Why it exists: mmseg's ``init_model`` loads checkpoints non-strictly (a
checkpoint that does not fit leaves random weights and only warns) and clears
the backbone's pretrained-weight settings only for ``EncoderDecoder``. Here a
model comes from a config + checkpoint or from a training work dir (its config
dump and its best checkpoint, else the last), every weight must fit
(``CheckpointMismatchError`` names the keys that differ), checkpoints load with
``weights_only=True``, and no pretrained weights are fetched. A model folder
written by ``tools/misc/package_model.py`` (see ``model_folder``) loads the same
way: its ``config.json`` (read as data: nothing in it runs), ``model.safetensors``
and ``classes.json``. A folder with a model folder's files but no manifest is
refused, not read as a work dir (whose Python config dump would run).
"""
import copy
import glob
import os.path as osp
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict

from ..acceleration import optimize_for_inference
from ..datasets.artefact_classes import (BINARY_CLASSES, BINARY_PALETTE,
                                         FULL_CLASSES, FULL_PALETTE)
from ..checkpoints.matching import load_checkpoint_strict
from ..checkpoints.selection import find_test_checkpoint
from .config_data import read_config_json
from .model_folder import (MANIFEST, ModelFolderError, is_model_folder,
                           looks_like_model_folder, open_model_folder)

ModelSource = Union[str, Path, Config]


def find_config_dump(work_dir: str) -> str:
    """The ``<config name>.py`` mmengine's Runner dumps at the top of a work dir."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir} does not exist')
    dumps = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(dumps) == 1:
        return dumps[0]
    own = osp.join(work_dir, osp.basename(osp.normpath(work_dir)) + '.py')
    if own in dumps:
        return own
    if not dumps:
        raise FileNotFoundError(
            f'work dir {work_dir} has no config dump: expected <work_dir>/<config name>.py '
            'as written by tools/train.py (mmengine Runner)')
    raise ValueError(f'work dir {work_dir} holds several configs ({", ".join(dumps)}); '
                     'keep only the dump of the run')


def resolve_model_source(model: ModelSource, checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None
                         ) -> Tuple[Config, Optional[str]]:
    """``(config, checkpoint)`` for a work dir, a model folder, a config file or
    a ``Config``.

    A work dir gives its config dump and, unless ``checkpoint`` is given, its
    best checkpoint (else the one ``last_checkpoint`` names); a model folder
    its ``config.json`` and ``model.safetensors`` (checked against its manifest); a
    ``.json`` config file is read as data, a ``.py`` one by mmengine (it runs).
    """
    cfg, checkpoint, _ = _resolve(model, checkpoint, cfg_options)
    return cfg, checkpoint


def _resolve(model: ModelSource, checkpoint: Optional[str],
             cfg_options: Optional[dict]) -> Tuple[Config, Optional[str], Optional[dict]]:
    """:func:`resolve_model_source` plus a model folder's classes (else None)."""
    folder_meta = None
    if isinstance(model, Config):
        cfg = copy.deepcopy(model)
    else:
        path = str(model)
        if is_model_folder(path):
            folder = open_model_folder(path)
            cfg, folder_meta = read_config_json(folder.config), folder.dataset_meta
            if checkpoint is None:
                checkpoint = folder.weights
        elif looks_like_model_folder(path):
            raise ModelFolderError(
                f'{path} holds model folder files but no {MANIFEST}: an incomplete copy of '
                'a model folder. It is not read as a work dir (that would run its Python '
                'config); copy the whole folder, manifest included')
        elif osp.isdir(path):
            cfg = Config.fromfile(find_config_dump(path))
            if checkpoint is None:
                checkpoint = find_test_checkpoint(path)
        elif osp.isfile(path) and path.endswith('.json'):
            cfg = read_config_json(path)
        elif osp.isfile(path):
            cfg = Config.fromfile(path)
        else:
            raise FileNotFoundError(f'model {path}: no such work dir or config file, '
                                    'nor a model folder')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if checkpoint is not None:
        checkpoint = str(checkpoint)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    return cfg, checkpoint, folder_meta


def inference_model_cfg(cfg: Config) -> ConfigDict:
    """``cfg.model`` ready to take a checkpoint: no pretrained weights are
    fetched or read (the checkpoint holds all weights) and no train_cfg."""
    model_cfg = without_pretrained_weights(cfg.model)
    model_cfg['train_cfg'] = None
    return model_cfg


def without_pretrained_weights(model_cfg: ConfigDict) -> ConfigDict:
    """A copy of a model config that neither fetches nor reads pretrained
    weights: no ``pretrained``, the backbone's ``pretrained`` False (None where
    it names a file, as mmseg's backbones take it) and its ``checkpoint_path``
    and ``init_cfg`` None."""
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.pop('pretrained', None)
    backbone = model_cfg.get('backbone')
    if backbone is not None:
        if isinstance(backbone.get('pretrained'), bool):
            backbone['pretrained'] = False
        elif isinstance(backbone.get('pretrained'), str):
            backbone['pretrained'] = None
        for key in ('checkpoint_path', 'init_cfg'):
            if key in backbone:
                backbone[key] = None
    return model_cfg


def config_dataset_meta(cfg: Config) -> Optional[dict]:
    """Classes and palette of the config's test dataset (used when a checkpoint
    carries no ``meta.dataset_meta``), None when the config names none."""
    from mmseg.registry import DATASETS
    dataloader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    dataset = dataloader.get('dataset', {})
    if dataset.get('type') == 'ARTeFACTDataset':
        if dataset.get('label_mode', 'binary') == 'binary':
            return dict(classes=BINARY_CLASSES, palette=BINARY_PALETTE)
        return dict(classes=FULL_CLASSES, palette=FULL_PALETTE)
    metainfo = dataset.get('metainfo') or {}
    if 'classes' in metainfo:
        return dict(metainfo)
    dataset_cls = DATASETS.get(dataset.get('type')) if dataset.get('type') else None
    metainfo = dict(getattr(dataset_cls, 'METAINFO', {})) if dataset_cls else {}
    return metainfo if 'classes' in metainfo else None


def numbered_classes(num_classes: int) -> dict:
    """'class 0', 'class 1', ... with the ARTeFACT palette, for a model whose
    checkpoint and config name no classes."""
    return dict(classes=tuple(f'class {i}' for i in range(num_classes)),
                palette=[FULL_PALETTE[i % len(FULL_PALETTE)] for i in range(num_classes)])


def build_segmentor(cfg: Config, device: str = 'cpu') -> nn.Module:
    """The config's segmentor without pretrained weights, BN instead of SyncBN
    on CPU, in eval mode on ``device`` (``model.cfg`` set, as mmseg's)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'device {device}: CUDA is not available on this machine; '
                           'use device cpu')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(inference_model_cfg(cfg))
    if not str(device).startswith('cuda'):
        model = revert_sync_batchnorm(model)
    model.cfg = cfg
    return model.to(device).eval()


def init_model(model: ModelSource, checkpoint: Optional[str] = None,
               device: str = 'cpu', cfg_options: Optional[dict] = None,
               optimize: bool = True) -> nn.Module:
    """A trained segmentor from a work dir, a model folder, or a config and a
    checkpoint (``.pth`` or ``.safetensors``), in eval mode on ``device``.

    ``optimize``: return ``optimize_for_inference``'s faster copy (conv+BN
    folded per ``test_cfg.fuse_conv_bn``, bf16 weights under a bf16
    ``test_cfg.autocast_dtype`` on CPU, NNPACK head convs); False: the model as
    built, e.g. to hook or edit its layers.

    Loads strictly (``CheckpointMismatchError`` with the differing keys) with
    ``weights_only=True``; ``model.dataset_meta`` comes from the checkpoint's
    meta, else a model folder's ``classes.json``, else the config's dataset
    (else numbered classes), and must have one class per output channel.
    ``checkpoint=None`` with a config file gives untrained weights.
    """
    cfg, checkpoint, folder_meta = _resolve(model, checkpoint, cfg_options)
    segmentor = build_segmentor(cfg, 'cpu')
    meta = {}
    if checkpoint is not None:
        loaded = load_checkpoint_strict(segmentor, checkpoint, map_location='cpu')
        meta = loaded.get('meta') or {}
    channels = getattr(segmentor, 'out_channels', None)
    dataset_meta = (meta.get('dataset_meta') or folder_meta or config_dataset_meta(cfg)
                    or numbered_classes(max(channels or 2, 2)))
    classes = list(dataset_meta.get('classes', ()))
    if channels is not None and len(classes) != max(channels, 2):
        raise ValueError(f'{checkpoint or "the config"}: {len(classes)} class names '
                         f'{classes} for a model with {channels} output channels')
    segmentor.dataset_meta = dict(dataset_meta)
    segmentor.checkpoint_path = checkpoint
    segmentor = segmentor.to(device).eval()
    return optimize_for_inference(segmentor) if optimize else segmentor
