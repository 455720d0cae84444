"""Evaluation: per-image confusion metrics, bootstrap intervals, metadata breakdowns."""
from .artseg_metric import ArtSegMetric, checked_per_image, load_per_image
from .functional import (bootstrap_ci, class_dice, class_iou, confusion_matrix, cross_fold_ci,
                         holm_adjust, mean_dice, mean_iou, metrics_from_confusion,
                         paired_bootstrap_diff, per_class_intervals)

__all__ = ['ArtSegMetric', 'bootstrap_ci', 'checked_per_image', 'class_dice', 'class_iou', 'confusion_matrix',
           'cross_fold_ci', 'holm_adjust', 'load_per_image', 'mean_dice', 'mean_iou',
           'metrics_from_confusion', 'paired_bootstrap_diff', 'per_class_intervals']
