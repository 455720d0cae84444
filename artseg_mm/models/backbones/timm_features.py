"""Any timm model as an mmseg backbone: a tuple of NCHW feature maps.

Why it exists: mmseg's own ``mmpretrain.TIMMBackbone`` wrapper returns timm's
features as they come (timm's Swin gives NHWC maps), cannot feed a fixed-size
model such as CoaT the crops and whole images mmseg's inference produces, and
has no frozen stages / norm eval. This module adds exactly that, and takes
channels and strides from timm's ``FeatureInfo`` instead of a hand-written list.
"""
import inspect
import math
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import Format
from timm.models._features import FeatureGetterNet
from timm.models._manipulate import group_parameters
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoints.matching import describe_key_mismatch, list_names
from ...utils.errors import error_summary
from .pretrained_weights import (PretrainedWeightsUnavailable, unavailable_message,
                                 weights_in_folder)

# Prefixes tried, in this order, when reading a checkpoint file: plain timm
# weights, DDP-wrapped weights, a whole mmseg segmentor (``backbone.``) and this
# wrapper's own ``model.`` attribute.
_CHECKPOINT_PREFIXES = ('', 'module.', 'backbone.', 'backbone.model.', 'model.',
                        'module.backbone.', 'module.backbone.model.')
# Features before this stride belong to the stem (timm's ResNet reports its
# stride-2 stem as feature 0); mmseg counts stages from stride 4.
_MIN_STAGE_STRIDE = 4


def _flat(key: str) -> str:
    """Key with every '.' as '_': timm's features wrappers flatten the first
    level of Sequential children by joining names with '_' (``stages.0`` ->
    ``stages_0``), so classifier and features names agree in this form."""
    return key.replace('.', '_')


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) for s in size):
        raise ValueError(f'img_size must be an int or (height, width), got {size!r}')
    return size


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a local checkpoint file, loaded with ``weights_only=True``.

    Accepts a plain state_dict (timm) or a dict holding it under ``state_dict``
    (mmengine, timm's train script) or ``model`` (DeiT-style releases).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if path.endswith('.safetensors'):  # timm's hub releases: tensors only, no pickle
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f'{path}: refused by torch.load(weights_only=True), the file holds '
            f'objects outside the allow-list: {err}') from err
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: expected a dict of tensors, got {type(ckpt).__name__}')
    for wrapper_key in ('state_dict', 'model'):
        if isinstance(ckpt.get(wrapper_key), dict):
            ckpt = ckpt[wrapper_key]
            break
    not_tensors = [k for k, v in ckpt.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f'{path}: not a state_dict, these entries are not tensors: '
                         f'{list_names(sorted(not_tensors))}')
    return ckpt


@MODELS.register_module()
class TimmFeatureBackbone(BaseModule):
    """A timm model built with ``features_only=True``, returning NCHW maps.

    Args:
        model_name: timm model name, e.g. ``convnext_tiny``,
            ``swin_tiny_patch4_window7_224``, ``coat_lite_small``, ``resnet50``.
        pretrained: True loads timm's hub weights for ``model_name``, unless a
            ``checkpoint_path`` is given (the local file wins). A string is read
            as a local checkpoint path (mmseg's segmentor passes its
            ``pretrained`` to the backbone this way).
        checkpoint_path: local checkpoint (``.pth`` or ``.safetensors``) in timm format (the classifier's
            state_dict, head keys are dropped) or mmengine format
            (``{'state_dict': ...}``, keys possibly prefixed ``backbone.``).
            A file that does not fit the model raises ValueError listing the
            missing / unexpected / misshapen keys.
        out_indices: timm feature indices to return (timm numbering: for
            ``resnet50`` index 0 is the stride-2 stem, 1..4 are layer1..4).
        img_size: input size for models built for one (CoaT): inputs up to this
            size are zero-padded bottom/right and the features cropped back;
            larger ones raise ValueError. Passed to timm for every model whose
            constructor takes it (for Swin, a size below 224 shrinks the
            windows); ignored, with a log line, by models that take any size.
        drop_path_rate: stochastic depth rate, passed to timm (also when 0:
            timm's Swin would otherwise default to 0.1).
        frozen_stages: freeze the stem and the first ``frozen_stages`` stages
            (-1: nothing): ``requires_grad=False`` and eval mode kept in
            ``train()``, as mmseg's backbones do. Stages follow timm's feature
            info at strides >= 4; each stage holds the parameters timm's
            ``group_matcher`` orders up to that stage's feature module.
        norm_eval: keep BatchNorm layers in eval mode during ``train()``.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, prefix=...)`` loads
            PATH through the same checked path as ``checkpoint_path``.
        pretrained_dir: a folder written by ``tools/misc/fetch_pretrained.py``:
            with ``pretrained=True`` the weights of ``model_name`` are read from
            it (sha256 checked against its index) instead of the hub.
        **timm_kwargs: passed to ``timm.create_model``; they override the size
            keywords chosen here (e.g. ``strict_img_size``).
    """

    def __init__(self,
                 model_name: str,
                 pretrained: Union[bool, str] = False,
                 checkpoint_path: Optional[str] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 img_size: Optional[Union[int, Sequence[int]]] = None,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained_dir: Optional[str] = None,
                 **timm_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(pretrained, str):
            if checkpoint_path is not None:
                raise ValueError('give a checkpoint either as `pretrained` (a path) or '
                                 f'as `checkpoint_path`, not both: {pretrained!r}, '
                                 f'{checkpoint_path!r}')
            pretrained, checkpoint_path = False, pretrained
        self.model_name = model_name
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        # A classifier built on the meta device (no memory, no init) tells the
        # model class, its constructor's keywords, its full feature info, and
        # the timm names of its weights.
        # It is kept out of the module tree (a local), only names are stored.
        with torch.device('meta'):
            reference = timm.create_model(model_name, pretrained=False, **timm_kwargs)
        accepted = inspect.signature(type(reference).__init__).parameters
        kwargs = self._size_kwargs(accepted, img_size)
        # Always passed: timm's own defaults differ (Swin's is 0.1).
        if 'drop_path_rate' in accepted:
            kwargs['drop_path_rate'] = drop_path_rate
        elif drop_path_rate:
            raise ValueError(f'{model_name} ({type(reference).__name__}) '
                             'takes no drop_path_rate')
        kwargs.update(timm_kwargs)
        # Checks that need no weights run before the (slow) real build.
        self.fixed_size = self._fixed_size(kwargs, reference)
        if self.fixed_size is not None:
            step = max(i['reduction'] for i in reference.feature_info)
            if any(s % step for s in self.fixed_size):
                raise ValueError(f'{model_name}: img_size {self.fixed_size} must be a '
                                 f'multiple of its largest stride {step}')
        if pretrained and checkpoint_path is None and pretrained_dir:
            checkpoint_path = weights_in_folder(pretrained_dir, model_name)
            print_log(f'{model_name}: ImageNet weights from {checkpoint_path} (sha256 as '
                      'in the folder index)', logger='current')
        source = None if checkpoint_path is None else read_state_dict(checkpoint_path)

        # A local file takes precedence over the hub (offline machines, fixed weights).
        fetch = bool(pretrained) and source is None
        if pretrained and source is not None and not pretrained_dir:
            print_log(f'{model_name}: weights from checkpoint_path {checkpoint_path}; '
                      'pretrained=True does not fetch hub weights', logger='current')
        try:
            self.model = timm.create_model(
                model_name, features_only=True, out_indices=tuple(out_indices),
                pretrained=fetch, **kwargs)
        except OSError as error:  # huggingface_hub's and requests' errors derive from it
            if not fetch:
                raise
            raise PretrainedWeightsUnavailable(
                unavailable_message(model_name, error_summary(error))) from error
        info = self.model.feature_info
        self.out_indices = tuple(out_indices)
        self.out_channels: List[int] = list(info.channels())
        self.out_strides: List[int] = list(info.reduction())
        # timm's own feature classes (e.g. EfficientNetFeatures) carry no
        # output_fmt and always return NCHW.
        fmt = Format(getattr(self.model, 'output_fmt', 'NCHW'))
        if fmt not in (Format.NCHW, Format.NHWC):
            raise ValueError(f'{model_name}: timm returns features as {fmt.value}, '
                             'only NCHW and NHWC maps are supported')
        self.channels_last_output = fmt == Format.NHWC

        # Classifier keys absent from the features model (head, final norm).
        self._head_keys = {_flat(k) for k in reference.state_dict()} - set(self._name_map())
        if source is not None:
            self.load_state(source, checkpoint_path)
        self._frozen: List[nn.Module] = []
        if frozen_stages >= 0:
            self._freeze_stages(reference)

    # ----------------------------------------------------------------- build
    def _size_kwargs(self, accepted, img_size) -> dict:
        """Keywords that let the model take the sizes mmseg feeds it."""
        kwargs = {}
        if 'strict_img_size' in accepted:  # Swin: any size, masks built per input
            kwargs['strict_img_size'] = False
        elif 'dynamic_img_size' in accepted:  # ViT-like: pos. embed. resampled
            kwargs['dynamic_img_size'] = True
        if img_size is not None:
            if 'img_size' in accepted:
                kwargs['img_size'] = _pair(img_size)
            else:
                print_log(f'{self.model_name} takes any input size: img_size '
                          f'{img_size} is not needed and not passed to timm',
                          logger='current')
        return kwargs

    @staticmethod
    def _fixed_size(kwargs, reference) -> Optional[Tuple[int, int]]:
        """(H, W) the built model demands, or None if it takes any size."""
        if kwargs.get('strict_img_size') is False or kwargs.get('dynamic_img_size'):
            return None
        cfg = getattr(reference, 'pretrained_cfg', None) or {}
        if not cfg.get('fixed_input_size', False):
            return None
        if 'img_size' in kwargs:
            return _pair(kwargs['img_size'])
        return tuple(cfg['input_size'][-2:])

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps, NCHW, one per ``out_indices`` entry."""
        if self.fixed_size is None:
            feats = self.model(x)
        else:
            feats = self._forward_fixed(x)
        if self.channels_last_output:
            # NHWC -> NCHW in the memory format the caller works in: a view for
            # a channels-last input (its convs take it as is), else a copy to
            # contiguous NCHW (NCHW convs fed a channels-last view would
            # reorder it in every conv)
            maps = tuple(f.permute(0, 3, 1, 2) for f in feats)
            if x.is_contiguous(memory_format=torch.channels_last):
                return maps
            return tuple(m.contiguous() for m in maps)
        return tuple(feats)

    def _forward_fixed(self, x: torch.Tensor) -> List[torch.Tensor]:
        h, w = x.shape[-2:]
        fh, fw = self.fixed_size
        if h > fh or w > fw:
            raise ValueError(
                f'{self.model_name} was built for img_size {self.fixed_size} and got an '
                f'input of {h}x{w}: set the backbone img_size to at least the largest '
                'input (the training crop, and for mmseg slide inference its crop_size)')
        if (h, w) == (fh, fw):
            return self.model(x)
        feats = self.model(F.pad(x, (0, fw - w, 0, fh - h)))
        return [f[..., :math.ceil(h / s), :math.ceil(w / s)]
                for f, s in zip(feats, self.out_strides)]

    # ------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', ...)`` with key checks.

        Like mmseg's Swin/ViT backbones, the Pretrained case is handled here
        because mmengine's PretrainedInit loads with ``strict=False`` (a file
        that does not fit loads nothing, with only a warning) and cannot map
        timm classifier names onto the features model.
        """
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            self.load_checkpoint(self.init_cfg['checkpoint'], self.init_cfg.get('prefix'))
            self._is_init = True
        else:
            super().init_weights()

    def _name_map(self) -> Dict[str, str]:
        """Flattened key (timm classifier or features naming) -> features key."""
        getter = isinstance(self.model, FeatureGetterNet)  # wraps the model as `.model`
        mapping = {}
        for key in self.model.state_dict():
            mapping[_flat(key)] = key
            if getter:
                mapping[_flat(key[len('model.'):])] = key
        return mapping

    def load_checkpoint(self, path: str, prefix: Optional[str] = None) -> None:
        """Load a timm- or mmengine-format file into ``self.model``.

        Raises ValueError naming the file and the keys when it does not fit.
        """
        self.load_state(read_state_dict(path), path, prefix)

    def load_state(self, source: Dict[str, torch.Tensor], path: str,
                   prefix: Optional[str] = None) -> None:
        """Load tensors read from ``path`` (named in errors); see load_checkpoint."""
        mapping = self._name_map()
        target = self.model.state_dict()
        recomputed = {name.rsplit('.', 1)[-1] for name, _ in self.model.named_buffers()
                      if name not in target}  # non-persistent, e.g. Swin's index tables

        # An explicit prefix (init_cfg's) may be followed by this wrapper's `model.`.
        prefixes = (prefix, prefix + 'model.') if prefix else _CHECKPOINT_PREFIXES
        best = max(prefixes, key=lambda p: sum(
            k.startswith(p) and _flat(k[len(p):]) in mapping for k in source))
        stripped = {k[len(best):]: v for k, v in source.items() if k.startswith(best)}
        if not stripped:
            raise ValueError(f'{path}: no key starts with prefix {best!r}')

        loaded, unexpected, dropped, misshapen = {}, [], [], []
        for key, value in stripped.items():
            flat = _flat(key)
            if flat in mapping:
                name = mapping[flat]
                if value.shape != target[name].shape:
                    misshapen.append(f'{key}: checkpoint {tuple(value.shape)} vs model '
                                     f'{tuple(target[name].shape)}')
                loaded[name] = value
            elif flat in self._head_keys or key.rsplit('.', 1)[-1] in recomputed:
                dropped.append(key)
            else:
                unexpected.append(key)
        missing = [k for k in target
                   if k not in loaded and not k.endswith('num_batches_tracked')]
        if missing or unexpected or misshapen:
            parts = [f'{path} does not match {self.model_name} (features_only): '
                     f'{len(loaded)} of {len(target)} keys matched (prefix {best!r})']
            parts += describe_key_mismatch(sorted(missing), sorted(unexpected),
                                           sorted(misshapen))
            raise ValueError('; '.join(parts))
        self.model.load_state_dict(loaded, strict=False)
        ignored = len(source) - len(stripped)
        print_log(f'{self.model_name}: loaded {len(loaded)} tensors from {path}; '
                  f'dropped {len(dropped)} classifier-head / recomputed keys'
                  + (f', ignored {ignored} keys outside prefix {best!r}' if ignored else ''),
                  logger='current')

    # -------------------------------------------------------------- stages
    def stage_module_names(self) -> List[str]:
        """Names in ``self.model`` of the module that ends each out_indices stage,
        e.g. ``stages_3`` for ConvNeXt (``backbone.model.stages_3``), usable as
        CAM target layers."""
        if isinstance(self.model, FeatureGetterNet):
            names = ['model.' + n for n in self.model.feature_info.module_name()]
        else:
            names = [_flat(n) for n in self.model.feature_info.module_name()]
        for name in names:
            self.model.get_submodule(name)  # raises AttributeError naming it if absent
        return names

    def _stage_of_parameters(self, reference: nn.Module) -> Dict[str, int]:
        """features-model parameter name -> stage (0 = stem, k = k-th stage)."""
        stages = [i['module'] for i in reference.feature_info
                  if i['reduction'] >= _MIN_STAGE_STRIDE]
        if not hasattr(reference, 'group_matcher'):
            raise ValueError(f'{self.model_name} has no timm group_matcher: '
                             'frozen_stages cannot find its stages')
        groups = group_parameters(reference, reference.group_matcher(coarse=True))
        order = {name: rank for rank, names in groups.items() for name in names}
        last = []
        for module in stages:
            ranks = [r for n, r in order.items() if n.startswith(module + '.')]
            if not ranks:
                raise ValueError(f'{self.model_name}: stage module {module} has no parameters')
            last.append(max(ranks))
        first = min(r for n, r in order.items() if n.startswith(stages[0] + '.'))
        mapping = self._name_map()
        result = {}
        for name, rank in order.items():
            if _flat(name) not in mapping:
                continue  # classifier head, absent from the features model
            if rank < first:
                stage = 0
            else:
                stage = next((k + 1 for k, r in enumerate(last) if rank <= r), None)
            if stage is not None:
                result[mapping[_flat(name)]] = stage
        return result

    def _frozen_modules(self) -> List[nn.Module]:
        """Largest submodules of self.model whose parameters are all frozen."""
        frozen = []

        def visit(module: nn.Module) -> None:
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                frozen.append(module)
                return
            for child in module.children():
                visit(child)

        visit(self.model)
        return frozen

    def _freeze_stages(self, reference: nn.Module) -> None:
        stage_of = self._stage_of_parameters(reference)
        n_stages = max(stage_of.values())
        if self.frozen_stages > n_stages:
            raise ValueError(f'frozen_stages={self.frozen_stages} but {self.model_name} '
                             f'has {n_stages} stages')
        params = dict(self.model.named_parameters())
        for name, stage in stage_of.items():
            if stage <= self.frozen_stages:
                params[name].requires_grad_(False)
        self._frozen = self._frozen_modules()
        for module in self._frozen:
            module.eval()

    def train(self, mode: bool = True) -> 'TimmFeatureBackbone':
        """Switch mode, keeping frozen stages (and BN with norm_eval) in eval."""
        super().train(mode)
        if mode:
            for module in self._frozen:
                module.eval()
            if self.norm_eval:
                for module in self.modules():
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self
