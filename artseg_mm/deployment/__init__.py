"""Export the whole-image model (ONNX, TorchScript, torch.export), run the
exported file, and check it against the PyTorch model.

Not imported by ``import artseg_mm``: ONNX export needs onnx and onnxscript,
ONNX inference onnxruntime. ``tools/deployment/export.py`` and
``tools/infer.py --model FILE.onnx`` use it.
"""
from .check import (MAX_CHANGED_PERCENT, CheckResult, compare_exported, default_check_image,
                    load_check_image)
from .export import FORMATS, INPUT_SIZES, ExportInfo, export_model, resolve_input_size
from .exportable import ShapeGenericAdaptiveAvgPool2d, WholeImageLogits
from .runtime import ExportedSegmentor, export_format, is_exported_model

__all__ = ['FORMATS', 'INPUT_SIZES', 'MAX_CHANGED_PERCENT', 'CheckResult', 'ExportInfo',
           'ExportedSegmentor', 'ShapeGenericAdaptiveAvgPool2d', 'WholeImageLogits',
           'compare_exported', 'default_check_image', 'export_format', 'export_model',
           'is_exported_model', 'load_check_image', 'resolve_input_size']
