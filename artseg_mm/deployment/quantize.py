"""Static int8 quantization of an exported ONNX model, calibrated on real images, and
how far its masks are from the float32 file's.

Why it exists: conservators segment whole collections on ordinary CPUs, where
int8 kernels (AVX2, and AVX-512 VNNI where present) run a window several times
faster than float32. Static quantization needs activation ranges, taken here
from windows of real images of the model's own data (or of the user's scans),
cut exactly as inference cuts them; the quantized file keeps the source file's
metadata (config, classes, input size) plus a record of its calibration, so
``tools/infer.py --model model_int8.onnx`` runs it like any exported file.
"""
import contextlib
import json
import logging
import os
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoints.atomic_io import AtomicLocalBackend
from ..models.segmentors import slide_windows
from ..utils.hashing import sha256_of
from .export import INPUT_NAME
from .runtime import ExportedSegmentor

QUANTIZATION_KEY = 'artseg_mm.quantization'
# largest share of pixels (percent) whose class may change against float32
MAX_CHANGED_PERCENT = 0.5
MAX_CALIBRATION_WINDOWS = 64


def calibration_images(source: str) -> List[str]:
    """The readable image files of a folder (sorted; the files ``tools/infer.py``
    reads); a clear error if none."""
    import cv2
    from ..apis.inferencer import IMAGE_EXTENSIONS
    if not osp.isdir(source):
        raise FileNotFoundError(f'calibration folder {source}: no such folder')
    names = sorted(n for n in os.listdir(source) if n.lower().endswith(IMAGE_EXTENSIONS))
    readable = [osp.join(source, n) for n in names
                if cv2.imread(osp.join(source, n), cv2.IMREAD_REDUCED_COLOR_8) is not None]
    if not readable:
        raise ValueError(f'calibration folder {source}: no readable image among '
                         f'{len(names)} image file(s) ({", ".join(IMAGE_EXTENSIONS)})')
    return readable


def check_node_names(model_path: str, names: Sequence[str]) -> None:
    """Refuse node names the ONNX graph does not hold (onnxruntime would ignore them)."""
    import onnx
    if not names:
        return
    known = {node.name for node in onnx.load(model_path, load_external_data=False).graph.node}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f'{model_path}: no node named {", ".join(unknown)} '
                         f'(the graph has {len(known)} nodes; list them with '
                         "python -c \"import onnx; print([n.name for n in onnx.load('MODEL')"
                         '.graph.node])\")')


def calibration_window(exported: ExportedSegmentor):
    """(h, w) of the windows inference cuts: the file's fixed input size, else the
    config's ``test_cfg.crop_size``; whole-image inference has none to calibrate on."""
    if exported.fixed_size is not None:
        return exported.fixed_size
    crop = exported.test_cfg.get('crop_size')
    if crop is None:
        raise ValueError(f'{exported.path}: whole-image inference (no test_cfg.crop_size); '
                         'calibration needs the windows inference cuts')
    return tuple(crop)


class WindowCalibration:
    """onnxruntime's ``CalibrationDataReader`` over the inference windows of images:
    each image loaded by the config's loader, cut into ``test_cfg`` windows, and
    normalised as inference normalises them; at most ``max_windows``, spread evenly
    over the images."""

    def __init__(self, exported: ExportedSegmentor, images: Sequence[str],
                 max_windows: int = MAX_CALIBRATION_WINDOWS) -> None:
        from ..apis.inferencer import image_loader
        self.images = list(images)
        self.size = calibration_window(exported)
        stride = tuple(exported.test_cfg.get('stride') or self.size)
        to_input = exported.window_model().to_input
        load = image_loader(exported.cfg)
        if len(self.images) > max_windows:  # one window each from images spread evenly
            picks = np.linspace(0, len(self.images) - 1, max_windows).round().astype(int)
            self.images = [self.images[i] for i in sorted(set(picks.tolist()))]
        per_image = max(1, max_windows // len(self.images))
        self.windows: List[np.ndarray] = []
        for path in self.images:
            image = load(path)
            boxes = slide_windows(image.shape[0], image.shape[1], self.size, stride)
            picks = np.linspace(0, len(boxes) - 1, min(per_image, len(boxes))).round()
            for i in sorted(set(picks.astype(int).tolist())):
                y1, y2, x1, x2 = boxes[i]
                window = to_input(image[y1:y2, x1:x2])
                # an image under the window: zeros after normalisation, as inference pads
                window = F.pad(window, (0, self.size[1] - window.shape[2],
                                        0, self.size[0] - window.shape[1]))
                self.windows.append(window[None].cpu().numpy().astype(np.float32))
        self._iterator: Iterator[np.ndarray] = iter(self.windows)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        window = next(self._iterator, None)
        return None if window is None else {INPUT_NAME: window}

    def rewind(self) -> None:
        self._iterator = iter(self.windows)


@contextlib.contextmanager
def _root_log_level(level: int):
    """onnxruntime's quantizer logs a warning on the root logger for every 1-D
    weight (norm scales) it quantizes per tensor instead of per channel, as
    intended: dozens of lines that say nothing to the user."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


@dataclass
class QuantizationRecord:
    """How a file was quantized: stored in its metadata under ``QUANTIZATION_KEY``."""
    source: str
    source_sha256: str
    calibration: str
    images: int
    windows: int
    method: str = 'onnxruntime quantize_static, QDQ, MinMax ranges'
    weights: str = 'int8, per output channel'
    activations: str = 'uint8, per tensor'
    float_nodes: List[str] = field(default_factory=list)


def quantize_onnx(source: str, out: str, images: Sequence[str], calibration: str,
                  float_nodes: Sequence[str] = (),
                  max_windows: int = MAX_CALIBRATION_WINDOWS) -> QuantizationRecord:
    """Write ``out``: ``source`` (an exported float32 ONNX file) quantized to int8,
    calibrated on the windows of ``images`` (described as ``calibration``);
    ``float_nodes``: ONNX node names kept in float32."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    exported = ExportedSegmentor(source)
    reader = WindowCalibration(exported, images, max_windows)
    record = QuantizationRecord(source=osp.basename(source),
                                source_sha256=sha256_of(source),
                                calibration=calibration, images=len(reader.images),
                                windows=len(reader.windows), float_nodes=list(float_nodes))
    with tempfile.TemporaryDirectory(prefix='quantize_') as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantized = osp.join(tmp, 'int8.onnx')
        with _root_log_level(logging.ERROR):
            quantize_static(prepared, quantized, reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QUInt8,
                            nodes_to_exclude=list(float_nodes))
        model = onnx.load(quantized)
        metadata = {p.key: p.value for p in onnx.load(source, load_external_data=False
                                                       ).metadata_props}
        metadata[QUANTIZATION_KEY] = json.dumps(record.__dict__)
        del model.metadata_props[:]
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        AtomicLocalBackend().put(model.SerializeToString(), out)
    return record


def add_to_record(path: str, **fields) -> dict:
    """Add ``fields`` (e.g. the measured agreement) to the quantization record in the
    metadata of the int8 file ``path``; returns the record."""
    import onnx
    model = onnx.load(path)
    entry = next(p for p in model.metadata_props if p.key == QUANTIZATION_KEY)
    record = dict(json.loads(entry.value), **fields)
    entry.value = json.dumps(record)
    AtomicLocalBackend().put(model.SerializeToString(), path)
    return record


def quantization_record(metadata: Dict[str, str]) -> Optional[dict]:
    """The quantization record of an exported file's metadata, or None (float32)."""
    value = metadata.get(QUANTIZATION_KEY)
    return None if value is None else json.loads(value)


@dataclass
class Agreement:
    """int8 against float32 on the same images: pixels whose class changed, and the
    per-image confusion matrices of both against the ground truth."""
    changed_pixels: int
    pixels: int
    conf_float: np.ndarray
    conf_int8: np.ndarray

    @property
    def changed_percent(self) -> float:
        return 100.0 * self.changed_pixels / max(self.pixels, 1)


def measure_agreement(float_path: str, int8_path: str, images: Sequence[str],
                      truths: Sequence[np.ndarray], num_classes: int) -> Agreement:
    """Segment ``images`` with both files (same windows and blending) and compare the
    masks with each other and with the ground truths (label ids, 255 ignored)."""
    from ..apis.inferencer import ScanInferencer
    from ..evaluation.functional import confusion_matrix
    float_model, int8_model = ScanInferencer(float_path), ScanInferencer(int8_path)
    changed = pixels = 0
    conf_float, conf_int8 = [], []
    for image, truth in zip(images, truths):
        a, b = float_model(image), int8_model(image)
        changed += int((a != b).sum())
        pixels += a.size
        conf_float.append(confusion_matrix(a, truth, num_classes))
        conf_int8.append(confusion_matrix(b, truth, num_classes))
    return Agreement(changed, pixels, np.stack(conf_float), np.stack(conf_int8))


def int8_kernels() -> str:
    """What the CPU offers int8 matrix work: VNNI (AVX-512 or AVX), else AVX2."""
    found = torch.cpu.get_capabilities()  # torch's cpuinfo: the same on every OS
    if found.get('avx512_vnni'):
        return 'AVX-512 VNNI'
    if found.get('avx_vnni'):
        return 'AVX-VNNI'
    if found.get('avx2'):
        return 'AVX2 (no VNNI)'
    return f'no AVX2 ({torch.backends.cpu.get_cpu_capability()})'
