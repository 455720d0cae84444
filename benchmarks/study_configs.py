"""The study's models as the benchmarks build them: one config per encoder in this
checkout's ``configs/``, its mmseg-native twin in ``configs/reference/``, and
our config with pretrained weights off (timing needs none) and the flags'
overrides, built through mmseg's registry.

Shared by the peers, slide and scan benchmarks so that each times the same model.
"""
import json
import os
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn

REPO_ROOT = str(Path(__file__).resolve().parents[1])
CONFIG_DIR = os.path.join(REPO_ROOT, 'configs')


def study_models() -> Dict[str, str]:
    """Encoder name -> the study's config of it: ``configs/<encoder>_<decoder>_artefact.py``,
    the model list the Makefile and the tests read too."""
    models: Dict[str, str] = {}
    for path in sorted(Path(CONFIG_DIR).glob('*_artefact.py')):
        encoder = path.name[:-len('_artefact.py')].rsplit('_', 1)[0]
        if encoder in models:
            raise ValueError(f'two study configs of encoder {encoder!r}: {models[encoder]} '
                             f'and {path}; the benchmark times one model per encoder')
        models[encoder] = str(path)
    return models


def mmseg_reference(our_config: str) -> Optional[str]:
    """The mmseg-native twin of one of our models, if the repo has one:
    ``configs/reference/<model>_mmseg_artefact.py`` for ``configs/<model>_artefact.py``."""
    model = os.path.basename(our_config)[:-len('_artefact.py')]
    path = os.path.join(CONFIG_DIR, 'reference', f'{model}_mmseg_artefact.py')
    return path if os.path.isfile(path) else None


def built_for_one_size(timm_name: str) -> bool:
    """timm builds this encoder for one input size (its pretrained config's
    ``fixed_input_size``: Swin, CoaT); ours and its peers are then built for the
    size they are timed at, alike."""
    import timm
    return bool(timm.models.get_pretrained_cfg(timm_name).fixed_input_size)


def option_value(text: str):
    """A ``--cfg-options`` value: JSON (single quotes allowed), True/False/None, else text."""
    try:
        return json.loads(text.replace("'", '"'))
    except json.JSONDecodeError:
        if text in ('True', 'False', 'None'):
            return {'True': True, 'False': False, 'None': None}[text]
        return text


def our_cfg(encoder: str, size: Optional[int], cfg_options: List[str]):
    """Our config of ``encoder``, pretrained weights off (timing needs none), an
    encoder built for one size built for ``size`` (None: the config's sliding
    window), then ``--cfg-options``."""
    from mmengine.config import Config
    cfg = Config.fromfile(study_models()[encoder])
    cfg.model.backbone.pretrained = False
    if built_for_one_size(cfg.model.backbone.model_name):
        cfg.model.backbone.img_size = size or cfg.model.test_cfg.crop_size[0]
    options = {}
    for item in cfg_options:
        if '=' not in item:
            raise ValueError(f'--cfg-options expects key=value, got {item!r}')
        key, value = item.split('=', 1)
        options[key] = option_value(value)
    cfg.merge_from_dict(options)
    return cfg


def build_mm_model(cfg_model) -> nn.Module:
    """An mmseg segmentor from a model config, with plain BN in place of SyncBN
    (SyncBN needs a process group in training; the benchmarks run one process)."""
    import artseg_mm  # noqa: F401  (registers the project's modules)
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    return revert_sync_batchnorm(MODELS.build(cfg_model))


def image_metas(x: torch.Tensor) -> List[dict]:
    """The metainfo an mmseg segmentor's ``inference`` needs for a batch of whole images."""
    shape = tuple(x.shape[2:])
    return [dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                 padding_size=[0, 0, 0, 0])] * x.shape[0]
