"""Loading transforms that turn broken images and masks into errors naming the file."""
import os.path as osp
from typing import Optional, Sequence

import cv2
import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .artefact_classes import ARTEFACT_CLASS_TABLE, IGNORE_INDEX
from .image_header import ImageHeader, read_image_header, warn_if_low_bits
from .orientation import warn_if_file_oriented

# mmcv decode flags that apply EXIF orientation -> the same without it ('unchanged'
# never applies it)
IGNORE_ORIENTATION = {'color': 'color_ignore_orientation',
                      'grayscale': 'grayscale_ignore_orientation'}
ARTEFACT_LABEL_VALUES = tuple(idx for idx, _, _ in ARTEFACT_CLASS_TABLE) + (IGNORE_INDEX,)


@TRANSFORMS.register_module()
class LoadArtSegImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a clear error for a missing or unreadable image.

    On a truncated PNG mmcv fails with ``AssertionError: failed to load image`` (cv2
    backend; no assertion at all under ``python -O``), ``OSError: image file is
    truncated`` (pillow, no file name) or a bare ``cv2.error`` for an empty file, and
    with ``ignore_empty=True`` the dataset silently draws another sample. This
    transform raises one error that names the file and the problem instead; it takes
    the same arguments except ``ignore_empty``, which it refuses.

    For local PNG and TIFF files in colour mode it also reads what the header
    declares (:mod:`.image_header`): 16-bit samples with fewer significant
    bits (e.g. 12-bit scanner data) are scaled by those bits, not as 16-bit;
    16-bit data filling only the low bits without a declaration is warned
    about (:class:`LowBitDepthWarning`); an alpha channel's fully transparent
    pixels are given as ``results['transparent']`` (bool H x W), which
    inference excludes from the class shares.
    """

    def __init__(self, *args, ignore_empty: bool = False, **kwargs) -> None:
        if ignore_empty:
            raise ValueError('LoadArtSegImageFromFile does not skip broken images '
                             '(ignore_empty=True); fix or remove the file instead')
        super().__init__(*args, ignore_empty=False, **kwargs)
        # EXIF orientation is not applied (masks carry none): see datasets.orientation
        self.color_type = IGNORE_ORIENTATION.get(self.color_type, self.color_type)

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        if not fileio.exists(filename, backend_args=self.backend_args):
            raise FileNotFoundError(f'image file {filename} does not exist')
        try:
            loaded = super().transform(results)
            shape = loaded['img'].shape
        except Exception as err:  # re-raised with the file named; mmcv's own messages lack it
            raise ValueError(
                f'cannot read image {filename}: the file is truncated, empty or not a valid '
                f'image ({type(err).__name__}: {err}). Replace it or remove it together with '
                f'its mask.') from err
        if len(shape) < 2 or min(shape[:2]) == 0:
            raise ValueError(f'image {filename} decoded to an empty array of shape {shape}')
        if osp.isfile(filename):
            warn_if_file_oriented(filename)
            if self.color_type == IGNORE_ORIENTATION['color']:
                self._apply_header(filename, loaded)
        return loaded

    def _apply_header(self, filename: str, loaded: dict) -> None:
        header = read_image_header(filename)
        if not (header.scaled_by_declared_bits or header.has_alpha):
            warn_if_low_bits(header, int(loaded['img'].max()), f'image {filename}')
            return
        # the colour decode above kept neither the raw samples nor the alpha
        raw = cv2.imdecode(np.frombuffer(fileio.get(filename, backend_args=self.backend_args),
                                         np.uint8),
                           cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        if header.scaled_by_declared_bits:
            image = colour_by_significant_bits(raw, header)
            loaded['img'] = image.astype(np.float32) if self.to_float32 else image
        else:
            warn_if_low_bits(header, int(loaded['img'].max()), f'image {filename}')
        if raw.ndim == 3 and raw.shape[2] in (2, 4):
            transparent = raw[..., -1] == 0
            if transparent.any():
                loaded['transparent'] = transparent


def colour_by_significant_bits(raw: np.ndarray, header: ImageHeader) -> np.ndarray:
    """H x W x 3 uint8 BGR of raw 16-bit samples (grey, grey+alpha, BGR or BGRA,
    as OpenCV decodes them unchanged) holding ``header.significant_bits`` of data:
    the full declared range maps to 0..255 (values above it saturate)."""
    colour = raw[..., :3] if raw.ndim == 3 and raw.shape[2] >= 3 else \
        (raw[..., 0] if raw.ndim == 3 else raw)
    peak = float(2 ** header.significant_bits - 1)
    scaled = np.empty(colour.shape, dtype=np.uint8)
    for r0 in range(0, colour.shape[0], 1024):  # row blocks: no full float copy
        block = colour[r0:r0 + 1024].astype(np.float32) * (255.0 / peak)
        scaled[r0:r0 + 1024] = np.clip(np.rint(block), 0, 255)
    if scaled.ndim == 2:
        scaled = cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR)
    return scaled


@TRANSFORMS.register_module()
class LoadArtSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that checks each mask against its image and label set.

    Before mmseg's ``reduce_zero_label``/``label_map`` handling (e.g. ARTeFACT's
    full -> binary map) it raises an error naming the mask file when the mask is
    missing or unreadable, is not single-channel, has values outside
    ``valid_values`` (default: ARTeFACT's ids 0..15 and 255; mmseg would cast them to
    uint8 and let ``label_map`` pass them through unmapped), or differs in size from
    the image loaded before it (``ori_shape``). Put it after the image loader.
    A sample without ``seg_map_path`` (an image given for inference) passes unchanged.

    Args:
        valid_values (Sequence[int], optional): The values a mask may hold.
            Defaults to ARTeFACT's class ids and 255.
        check_size (bool): Compare the mask size with ``ori_shape``. Defaults to True.
        **kwargs: The arguments of mmseg's ``LoadAnnotations``.
    """

    def __init__(self,
                 valid_values: Optional[Sequence[int]] = None,
                 check_size: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        values = ARTEFACT_LABEL_VALUES if valid_values is None else valid_values
        self.valid_values = np.array(sorted(set(int(v) for v in values)))
        self.check_size = check_size

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        if path is None:
            # a sample that names no mask: an image given for inference (mmseg's
            # inference_model keeps this step of the test pipeline, which it drops
            # only under the exact name 'LoadAnnotations'); datasets name one always
            return
        img_path = results.get('img_path', '?')
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(f'mask {path} for image {img_path} does not exist')
        try:
            raw = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                                   flag='unchanged', backend=self.imdecode_backend)
            if raw is None:
                raise ValueError('the decoder returned nothing')
        except Exception as err:  # re-raised with the file named; the decoders' messages lack it
            raise ValueError(f'cannot read mask {path} (image {img_path}): the file is '
                             f'truncated, empty or not a valid image '
                             f'({type(err).__name__}: {err})') from err
        raw = raw.squeeze()
        if raw.ndim != 2:
            raise ValueError(f'mask {path} has shape {raw.shape}; expected a single-channel '
                             f'image of class ids (not a colour-coded annotation)')
        bad = np.setdiff1d(np.unique(raw), self.valid_values)
        if bad.size:
            raise ValueError(f'mask {path} holds values {bad.tolist()[:20]} outside the label '
                             f'set {self.valid_values.tolist()}')
        if self.check_size:
            if 'ori_shape' not in results:
                raise KeyError('LoadArtSegAnnotations checks the mask size against the image: '
                               'put it after the image loader in the pipeline '
                               '(or set check_size=False)')
            img_hw = tuple(results['ori_shape'][:2])
            if raw.shape != img_hw:
                raise ValueError(f'mask {path} is {raw.shape[1]}x{raw.shape[0]} (WxH) but its '
                                 f'image {img_path} is {img_hw[1]}x{img_hw[0]}')
        gt_seg = raw.astype(np.uint8)
        # From here on as mmseg's LoadAnnotations._load_seg_map, which decodes inside itself.
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'the dataset has reduce_zero_label={results["reduce_zero_label"]} '
                             f'but LoadArtSegAnnotations has {self.reduce_zero_label}')
        if self.reduce_zero_label:
            gt_seg[gt_seg == 0] = 255
            gt_seg = gt_seg - 1
            gt_seg[gt_seg == 254] = 255
        if results.get('label_map', None) is not None:
            original = gt_seg.copy()
            for old_id, new_id in results['label_map'].items():
                gt_seg[original == old_id] = new_id
        results['gt_seg_map'] = gt_seg
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', valid_values={self.valid_values.tolist()}, '
                f'check_size={self.check_size})')
