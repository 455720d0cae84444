"""Dice + focal loss for damage segmentation (the study's ``DiceFocalLoss``).

Why it exists: mmseg has a ``DiceLoss`` and a ``FocalLoss`` that could be listed
side by side in ``loss_decode``, but neither masks ``ignore_index`` pixels out of
both terms (mmseg's ``DiceLoss`` drops the *channel* numbered ``ignore_index``,
not the pixels), neither computes in float32 under AMP, and the study needs their
weighted sum under one logged name with one alpha convention.
"""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.fileio import load
from torch import Tensor

from mmseg.registry import MODELS


def load_class_weight(class_weight: Union[None, str, Sequence[float]],
                      classes: Optional[Sequence[str]] = None
                      ) -> Optional[List[float]]:
    """Class weights from a list, or from a file.

    A file is ``.npy`` (a 1-D array) or anything ``mmengine.fileio.load`` reads
    (json / yaml / pkl) holding either a list or a dict with the key
    ``class_weights`` (the converter's ``class_weights.json``).

    ``classes`` is the label set the weights are for: the weights must have one
    entry per class, and a file that names its ``classes`` (the converter's
    does) must name these, in this order; otherwise the weights were computed
    for another label set (e.g. the binary one) and are refused.
    """
    if class_weight is None:
        return None
    source = 'class_weight'
    file_classes = None
    if isinstance(class_weight, str):
        source = f'class_weight file {class_weight!r}'
        if not osp.isfile(class_weight):
            raise FileNotFoundError(
                f'{source} does not exist. It is written by '
                '`tools/dataset_converters/artefact.py` (real data) or '
                '`tools/misc/make_demo_data.py` (demo data) next to meta.json; '
                're-run the one that made this data root, or set the '
                "loss's class_weight to the file's path.")
        if class_weight.endswith('.npy'):
            class_weight = np.load(class_weight).tolist()
        else:
            class_weight = load(class_weight)
        if isinstance(class_weight, dict):
            if 'class_weights' not in class_weight:
                raise KeyError(
                    f'{source} holds a dict without the key "class_weights" '
                    f'(keys: {sorted(class_weight)})')
            file_classes = class_weight.get('classes')
            class_weight = class_weight['class_weights']
    if isinstance(class_weight, (np.ndarray, Tensor)):
        class_weight = class_weight.tolist()
    if not isinstance(class_weight, (list, tuple)) or not class_weight:
        raise TypeError(f'{source} must be a non-empty list of numbers, '
                        f'got {class_weight!r}')
    try:
        weights = [float(w) for w in class_weight]
    except (TypeError, ValueError) as err:
        raise TypeError(f'{source} must be a list of numbers, '
                        f'got {class_weight!r}') from err
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f'{source} must hold finite non-negative numbers '
                         f'with a positive sum, got {weights}')
    if classes is not None:
        classes = [str(c) for c in classes]
        if file_classes is not None and [str(c) for c in file_classes] != classes:
            raise ValueError(
                f'{source} was computed for the classes {list(file_classes)} '
                f'({len(file_classes)}), but this loss is for {classes} '
                f'({len(classes)}): it belongs to another label set. Use the '
                'weights file written for this label mode.')
        if len(weights) != len(classes):
            raise ValueError(
                f'{source} has {len(weights)} weights, but this loss is for '
                f'{len(classes)} classes {classes}')
    return weights


@MODELS.register_module()
class DiceFocalLoss(nn.Module):
    r"""``lambda_dice * Dice + lambda_focal * Focal``, ignoring ``ignore_index`` pixels.

    Notation: pixels :math:`i` of the whole batch, classes :math:`c = 0..C-1`,
    label :math:`t_i`, probabilities :math:`p_{ic}` (softmax over the C logits),
    one-hot :math:`y_{ic}`, pixel mask
    :math:`m_i = [t_i \ne \text{ignore}] \cdot \text{weight}_i` (``weight`` is
    mmseg's optional per-pixel sampler weight, 1 when absent), class weights
    :math:`w_c` (1 when ``class_weight`` is None).

    * Dice (soft, per class over the whole batch, then a weighted mean over all
      C classes, present or not; ``s`` = ``smooth``)::

          I_c = sum_i m_i p_ic y_ic
          S_c = sum_i m_i (p_ic + y_ic)
          Dice = sum_c w_c (1 - (2 I_c + s) / (S_c + s)) / sum_c w_c

      An absent class scores ``S_c / (S_c + s)``: predicting it costs, not
      predicting it costs ~0.
    * Focal (Lin et al. 2017, https://arxiv.org/abs/1708.02002), mean over the
      non-ignored pixels, class-weighted as in ``F.cross_entropy(weight=...)``::

          FL_i  = -a_{t_i} (1 - p_{i t_i})^gamma log p_{i t_i}
          Focal = sum_i m_i w_{t_i} FL_i / sum_i m_i w_{t_i}

      Without ``class_weight`` the denominator is the number of non-ignored
      pixels. Both terms are weighted means, so scaling all ``w_c`` by one
      factor changes nothing and the lambdas keep their meaning.

      ``alpha`` as a number applies as in the binary focal loss:
      ``a_0 = 1 - alpha`` for class 0 (clean) and ``a_c = alpha`` for every
      damage class ``c >= 1`` (Lin et al.'s convention: with 0.25 damage pixels
      weigh less, the gamma term focuses on the hard ones); a sequence of C
      numbers gives ``a_c`` per class.
      If ``avg_factor`` is passed (mmseg convention) it replaces the
      denominator ``sum_i m_i w_{t_i}``.

    When every pixel is ignored both terms are 0 (with a finite, zero gradient).

    Sigmoid mode (``use_sigmoid=True``): logits are N x 1 x H x W, labels 0/1
    (plus ``ignore_index``); ``p_i1 = sigmoid(z_i)``, ``p_i0 = 1 - p_i1`` and the
    formulas above apply with C = 2. It equals softmax mode on logits
    ``(0, z)``, so both modes share ``alpha`` and a 2-entry ``class_weight``.

    All of it runs in float32 (fp16/bf16 logits are cast, autocast is off).

    Args:
        use_sigmoid (bool): Single-logit binary mode. Defaults to False.
        lambda_dice (float): Weight of the Dice term. Defaults to 0.7.
        lambda_focal (float): Weight of the focal term. Defaults to 0.3.
        alpha (float | Sequence[float]): Focal alpha, see above. Defaults to 0.25.
        gamma (float): Focal exponent, >= 0. Defaults to 2.0.
        smooth (float): Dice smoothing ``s``, > 0. Defaults to 1.0.
        class_weight (list[float] | str | None): Per-class weights ``w_c``, or
            a path to a file holding them (e.g. the converter's
            ``class_weights.json``: ``{"class_weights": [...]}``).
        classes (Sequence[str], optional): The label set of the logits; when
            given, ``class_weight`` is checked against it when the loss is
            built (see :func:`load_class_weight`), not at the first step.
        ignore_index (int): Label ignored when the caller passes none; the
            ``ignore_index`` argument of ``forward`` (mmseg's decode head passes
            its own) takes precedence. Defaults to 255.
        loss_weight (float): Factor on the total. Defaults to 1.0.
        loss_name (str): Log key; must start with ``loss_`` so that mmseg
            counts it in the total loss. Defaults to 'loss_dice_focal'.
    """

    def __init__(self,
                 use_sigmoid: bool = False,
                 lambda_dice: float = 0.7,
                 lambda_focal: float = 0.3,
                 alpha: Union[float, Sequence[float]] = 0.25,
                 gamma: float = 2.0,
                 smooth: float = 1.0,
                 class_weight: Union[None, str, Sequence[float]] = None,
                 classes: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice_focal') -> None:
        super().__init__()
        if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
            raise ValueError(
                f"DiceFocalLoss loss_name must start with 'loss_' (mmseg only "
                f'adds such keys to the total loss), got {loss_name!r}')
        if gamma < 0:
            raise ValueError(f'DiceFocalLoss gamma must be >= 0, got {gamma}')
        if not smooth > 0:
            raise ValueError(
                f'DiceFocalLoss smooth must be > 0 (it keeps the Dice of an '
                f'absent class finite), got {smooth}')
        alphas = list(alpha) if isinstance(alpha, (list, tuple)) else [alpha]
        if not alphas or any(not 0 <= float(a) <= 1 for a in alphas):
            raise ValueError(
                f'DiceFocalLoss alpha must be in [0, 1], got {alpha}')
        if isinstance(alpha, (list, tuple)):
            alpha = [float(a) for a in alpha]
        self.use_sigmoid = use_sigmoid
        self.lambda_dice = lambda_dice
        self.lambda_focal = lambda_focal
        self.alpha = alpha
        self.gamma = gamma
        self.smooth = smooth
        self.class_weight = load_class_weight(class_weight, classes)
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in mmseg's loss dict (starts with ``loss_``)."""
        return self._loss_name

    def _class_vector(self, values: Sequence[float], what: str,
                      num_classes: int, ref: Tensor) -> Tensor:
        if len(values) != num_classes:
            raise ValueError(
                f'DiceFocalLoss {what} has {len(values)} entries but the '
                f'logits have {num_classes} classes'
                + (' (sigmoid mode counts 2: 0 and 1)' if self.use_sigmoid
                   else ''))
        return ref.new_tensor(values)

    def _probabilities(self, logits: Tensor):
        """(probabilities, log-probabilities), both N x C x H x W float32."""
        if self.use_sigmoid:
            if logits.size(1) != 1:
                raise ValueError(
                    'DiceFocalLoss(use_sigmoid=True) expects logits of shape '
                    f'N x 1 x H x W, got {tuple(logits.shape)}')
            log_prob = torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)],
                                 dim=1)
        else:
            if logits.size(1) < 2:
                raise ValueError(
                    'DiceFocalLoss softmax mode needs >= 2 classes, got logits '
                    f'of shape {tuple(logits.shape)}; use use_sigmoid=True for '
                    'a single logit')
            log_prob = F.log_softmax(logits, dim=1)
        return log_prob.exp(), log_prob

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Loss of ``cls_score`` (N x C x H x W) against ``label`` (N x H x W).

        ``weight`` is an optional per-pixel weight (N x H x W), as mmseg's
        pixel samplers produce; only the 'mean' reduction exists.
        """
        if kwargs:
            raise TypeError(
                f'DiceFocalLoss.forward got unexpected arguments {sorted(kwargs)}')
        if reduction_override not in (None, 'mean'):
            raise ValueError('DiceFocalLoss supports only the "mean" reduction, '
                             f'got reduction_override={reduction_override!r}')
        if ignore_index is None:
            ignore_index = self.ignore_index
        if label.dim() == 4 and label.size(1) == 1:
            label = label.squeeze(1)
        if cls_score.dim() != 4 or label.shape != (cls_score.shape[:1] +
                                                   cls_score.shape[2:]):
            raise ValueError(
                'DiceFocalLoss expects logits N x C x H x W and labels N x H x W, '
                f'got {tuple(cls_score.shape)} and {tuple(label.shape)}')

        with torch.autocast(device_type=cls_score.device.type, enabled=False):
            return self.loss_weight * self._loss(
                cls_score.float(), label.long(), weight, ignore_index,
                avg_factor)

    def _loss(self, logits: Tensor, label: Tensor, weight: Optional[Tensor],
              ignore_index: int, avg_factor: Optional[float]) -> Tensor:
        prob, log_prob = self._probabilities(logits)
        num_classes = prob.size(1)

        valid = label != ignore_index
        bad = valid & ((label < 0) | (label >= num_classes))
        if bad.any():
            raise ValueError(
                f'DiceFocalLoss got label values {label[bad].unique().tolist()} '
                f'outside 0..{num_classes - 1} (ignore_index={ignore_index})')
        target = torch.where(valid, label, torch.zeros_like(label))
        mask = valid.float()
        if weight is not None:
            mask = mask * weight.float().reshape(mask.shape)
        mask = mask.unsqueeze(1)  # N x 1 x H x W
        one_hot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).float()

        if self.class_weight is not None:
            class_w = self._class_vector(self.class_weight, 'class_weight',
                                         num_classes, prob)
        else:
            class_w = prob.new_ones(num_classes)
        if isinstance(self.alpha, list):
            alpha = self._class_vector(self.alpha, 'alpha', num_classes, prob)
        else:
            alpha = prob.new_full((num_classes, ), self.alpha)
            alpha[0] = 1 - self.alpha

        # Dice: per class over the whole batch, weighted mean over classes.
        dims = (0, 2, 3)
        intersection = (mask * prob * one_hot).sum(dims)
        total = (mask * (prob + one_hot)).sum(dims)
        dice_c = 1 - (2 * intersection + self.smooth) / (total + self.smooth)
        dice = (class_w * dice_c).sum() / class_w.sum()

        # Focal: class-weighted mean over the non-ignored pixels.
        target_ = target.unsqueeze(1)
        log_pt = log_prob.gather(1, target_)
        pt = prob.gather(1, target_)
        pixel_w = class_w[target_] * mask
        focal_sum = -(pixel_w * alpha[target_] * (1 - pt).pow(self.gamma) *
                      log_pt).sum()
        if avg_factor is None:
            denom = pixel_w.sum().clamp_min(torch.finfo(torch.float32).eps)
        else:
            denom = avg_factor + torch.finfo(torch.float32).eps
        focal = focal_sum / denom

        return self.lambda_dice * dice + self.lambda_focal * focal
