"""Inference APIs: build a trained segmentor once, apply it to images and scans.

``from artseg_mm.apis import init_model, inference_model`` works with nothing
imported before. mmseg's own ``mmseg.apis.init_model`` and ``inference_model``
also work on our configs once ``artseg_mm`` is imported (a config's
``custom_imports`` does it); ``MMSegInferencer`` finds the loading steps by exact
type name, so on our configs use its subclass :class:`ArtSegInferencer`.
"""
from .inferencer import ScanInferencer, image_loader
from .mmseg_inferencer import ArtSegInferencer
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


__all__ = ['ArtSegInferencer', 'ScanInferencer', 'WindowModel', 'build_segmentor',
           'config_dataset_meta', 'count_windows', 'find_config_dump', 'image_loader',
           'inference_model', 'inference_model_cfg', 'init_model', 'is_model_folder',
           'open_model_folder', 'package_model', 'predict_class_ids',
           'resolve_model_source', 'segmentor_window_model']
