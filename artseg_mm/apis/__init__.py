"""Inference APIs: build a trained segmentor once, apply it to images and scans.

``from artseg_mm.apis import init_model, inference_model`` works on mmcv-lite
with nothing imported before (importing the package installs the
compatibility layer first). mmseg's own ``mmseg.apis.init_model``,
``inference_model`` and ``MMSegInferencer`` also work on our configs once
``artseg_mm`` is imported.
"""
from .inferencer import ScanInferencer, image_loader
from .model_folder import is_model_folder, open_model_folder
from .model_loader import (build_segmentor, config_dataset_meta, find_config_dump,
                           inference_model_cfg, init_model, resolve_model_source)
from .model_package import package_model
from .scan_inference import (WindowModel, count_windows, predict_class_ids,
                             segmentor_window_model)


def inference_model(model, img):
    """mmseg's ``inference_model`` (a ``SegDataSample`` per image) on our models."""
    from mmseg.apis import inference_model as mmseg_inference_model
    return mmseg_inference_model(model, img)


__all__ = ['ScanInferencer', 'WindowModel', 'build_segmentor', 'config_dataset_meta',
           'count_windows', 'find_config_dump', 'image_loader', 'inference_model',
           'inference_model_cfg', 'init_model', 'is_model_folder', 'open_model_folder',
           'package_model', 'predict_class_ids', 'resolve_model_source',
           'segmentor_window_model']
