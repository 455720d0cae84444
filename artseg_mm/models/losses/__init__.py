"""models/losses: the study's Dice + focal loss."""
from .dice_focal_loss import DiceFocalLoss, load_class_weight

__all__ = ['DiceFocalLoss', 'load_class_weight']
