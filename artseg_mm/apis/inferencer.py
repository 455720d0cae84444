"""Apply a trained segmentor to one's own scans: files of any size -> class ids.

Why it exists: mmseg's ``MMSegInferencer`` and ``inference_model`` need the
whole image as a float tensor and whole-image logits (memory grows with area x
classes), and they load images with mmcv's plain loader. ``ScanInferencer``
loads each file with the config's own image loader (the one training used:
same decoding, bit depth handling and EXIF orientation) and predicts with
:func:`predict_scan`, whose memory is bounded by the window batch, from a
PyTorch segmentor or an exported model file (``artseg_mm.deployment``).
"""
import copy
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch.nn as nn

from ..datasets.artefact_classes import IGNORE_INDEX
from .model_loader import ModelSource, init_model
from .pipeline_steps import is_step_of
from ..models.segmentors.sliding_window import window_blend
from .scan_inference import ScanPrediction, count_windows, predict_scan

# the image files scans are read from (tools/infer.py, int8 calibration folders)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
# the largest image decoded by default: above ARTeFACT's largest scan (133 Mpx)
# with room, far below what a crafted header can claim (OpenCV takes up to 1 Gpx)
DEFAULT_MAX_PIXELS = 250_000_000

# pipeline steps that scan inference reproduces (loading, packing); anything
# else (a Resize, say) would change what the model sees, so it is refused
_REPRODUCED_STEPS = ('LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs')


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than the limit."""


def check_pixel_limit(path: str, max_pixels: int) -> None:
    """Refuse an image whose header declares more than ``max_pixels``, before any
    decoding (a small file can declare a huge image and exhaust the memory)."""
    import imagesize
    width, height = imagesize.get(str(path))  # (-1, -1): no header it knows; the decoder
    # then names the file, and OpenCV itself refuses images over 2^30 pixels
    if width > 0 and height > 0 and width * height > max_pixels:
        raise ImageTooLargeError(
            f'{path}: {width}x{height} = {width * height / 1e6:.0f} Mpx, above the limit of '
            f'{max_pixels / 1e6:.0f} Mpx; raise it with --max-pixels (ScanInferencer '
            'max_pixels) if the machine has the memory for it')


def check_single_page(path: str) -> None:
    """Refuse a TIFF with several pages: the decoders read its first page only,
    and a mask of page 1 reported as the file's would be silently wrong."""
    if not str(path).lower().endswith(('.tif', '.tiff')):
        return
    from PIL import Image
    with Image.open(path) as image:  # reads the page directory, not the pixels
        pages = getattr(image, 'n_frames', 1)
    if pages > 1:
        raise ValueError(f'{path} holds {pages} pages; only single-page TIFFs are read (the '
                         'decoders see page 1 only): split it into one file per page, e.g. '
                         'with tiffsplit, and segment those')


def image_loader(cfg, with_transparency: bool = False) -> Callable[[str], np.ndarray]:
    """The config's test-pipeline image loader as ``path -> H x W x 3 uint8``;
    ``with_transparency``: ``path -> (image, transparent)``, where ``transparent``
    is the bool H x W map of fully transparent pixels, or None."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import TRANSFORMS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    for step in pipeline:
        if not any(is_step_of(step, name) for name in _REPRODUCED_STEPS):
            raise ValueError(f"the test pipeline step {step.get('type')!r} is not one that "
                             'scan inference reproduces (image loading and packing only)')
    loaders = [s for s in pipeline if is_step_of(s, 'LoadImageFromFile')]
    if not loaders:
        raise ValueError('the test pipeline has no image loading step '
                         '(LoadImageFromFile or a subclass)')
    loader = TRANSFORMS.build(copy.deepcopy(loaders[0]))

    def load(path: str):
        results = loader(dict(img_path=str(path)))
        image = results['img']
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.dtype != np.uint8:
            raise ValueError(f'{path}: the loader gave {image.dtype} pixels; set the '
                             "loader's color_type to 'color' (8-bit) for inference")
        return (image, results.get('transparent')) if with_transparency else image
    return load


class ScanInferencer:
    """Class-id masks for image files or arrays, from a work dir, a model folder,
    a config or an exported model file.

    Args:
        model: a work dir, a model folder, a config file, a ``Config``, a built
            segmentor, or a file written by ``tools/deployment/export.py``
            (``.onnx`` run by onnxruntime; ``.pt`` TorchScript and ``.pt2``
            torch.export on CPU), which carries its config, classes and palette.
        checkpoint: the weights (default: a work dir's best, else last; a
            model folder's own); not for an exported file, which holds its weights.
        device: 'cpu' or 'cuda[:N]'.
        cfg_options: config overrides, e.g. ``{'model.test_cfg.batch_size': 8}``.
        max_pixels: image files whose header declares more pixels are refused
            before decoding (:class:`ImageTooLargeError`).
        optimize: predict with ``optimize_for_inference``'s copy of a loaded
            model (a built ``nn.Module`` passed in is used as it is).
    """

    def __init__(self, model: Union[ModelSource, nn.Module], checkpoint: Optional[str] = None,
                 device: str = 'cpu', cfg_options: Optional[dict] = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, optimize: bool = True) -> None:
        from ..deployment.runtime import ExportedSegmentor, is_exported_model
        if is_exported_model(model):
            if checkpoint is not None:
                raise ValueError(f'{model} is an exported model and holds its weights: '
                                 f'no checkpoint ({checkpoint}) applies')
            self.model = ExportedSegmentor(model, device=device, cfg_options=cfg_options)
            self._windows = self.model.window_model()
        else:
            self.model = model if isinstance(model, nn.Module) else init_model(
                model, checkpoint, device=device, cfg_options=cfg_options, optimize=optimize)
            self._windows = self.model
        self.classes = tuple(self.model.dataset_meta['classes'])
        self.palette = [tuple(int(v) for v in c) for c in self.model.dataset_meta['palette']]
        self.max_pixels = max_pixels
        self._decode = image_loader(self.model.cfg, with_transparency=True)
        count_windows(self.model, (1, 1))  # an invalid test_cfg window/stride stops here
        window_blend(self.model.test_cfg)  # and so does an unknown window_blend

    def load_image(self, path: str) -> np.ndarray:
        """The image as the config's loader reads it, if within ``max_pixels``."""
        return self.load_scan(path)[0]

    def load_scan(self, path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(image, transparent)``: the image as :meth:`load_image` and the bool
        map of its fully transparent pixels (alpha 0), or None."""
        check_pixel_limit(path, self.max_pixels)
        check_single_page(path)
        try:
            return self._decode(path)
        except ValueError as error:  # the training loader's advice speaks of masks
            cause = error.__cause__ or error
            raise ValueError(f'cannot read {path}: the file is truncated, empty or not an '
                             f'image this loader decodes ({type(cause).__name__}: '
                             f'{cause})') from error

    def num_windows(self, image: np.ndarray) -> int:
        return count_windows(self.model, image.shape)

    def __call__(self, image: Union[str, np.ndarray],
                 progress: Optional[Callable[[int], None]] = None,
                 transparent: Optional[np.ndarray] = None) -> np.ndarray:
        """(H, W) uint8 class ids of an image file or an H x W x 3 uint8 array
        (in the loader's channel order): :meth:`predict`'s ``ids``."""
        return self.predict(image, progress, transparent).ids

    def predict(self, image: Union[str, np.ndarray],
                progress: Optional[Callable[[int], None]] = None,
                transparent: Optional[np.ndarray] = None,
                confidence: bool = False) -> ScanPrediction:
        """Class ids and, with ``confidence``, each pixel's confidence (uint8,
        value / 255 = the top class's probability; :class:`ScanPrediction`) of an
        image file or an H x W x 3 uint8 array (in the loader's channel order).
        Fully transparent pixels (of a file's alpha channel, or ``transparent``
        for an array) get the ignore id ``IGNORE_INDEX`` (255) and confidence 0:
        they are no part of the object."""
        if not isinstance(image, np.ndarray):
            image, transparent = self.load_scan(image)
        prediction = predict_scan(self._windows, image, progress=progress,
                                  confidence=confidence)
        if transparent is not None:
            prediction.ids[transparent] = IGNORE_INDEX
            if prediction.confidence is not None:
                prediction.confidence[transparent] = 0
        return prediction
