"""Evaluation: per-image confusion metrics, their uncertainty, metadata breakdowns.

For researchers' own notebooks: :func:`paired_test` compares two models on the
same images (per-image confusion matrices, one checkpoint or several seeds each),
:func:`model_interval` gives one model's metric with its interval.
"""
from .artseg_metric import ArtSegMetric, checked_per_image, load_per_image
from .functional import (Statistic, class_dice, class_iou, confusion_matrix, mean_dice,
                         mean_iou, metrics_from_confusion, present_classes, statistic)
from .statistics import (bootstrap_ci, fold_mean_ci, holm_adjust, model_interval,
                         paired_test, per_class_intervals)

__all__ = ['ArtSegMetric', 'Statistic', 'bootstrap_ci', 'checked_per_image', 'class_dice',
           'class_iou', 'confusion_matrix', 'fold_mean_ci', 'holm_adjust', 'load_per_image',
           'mean_dice', 'mean_iou', 'metrics_from_confusion', 'model_interval', 'paired_test',
           'per_class_intervals', 'present_classes', 'statistic']
