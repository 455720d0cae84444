"""Speed and memory of segmenting one large scan, three ways on one model.

``benchmark.py --scan`` runs each method in a fresh process (clean peak RSS):

- ``infer``: ``tools/infer.py``'s path, :func:`artseg_mm.apis.predict_class_ids`
  (uint8 image, window batches, class ids per finished row band);
- ``mmseg_slide``: mmseg's ``EncoderDecoder.slide_inference`` on the same
  built model (one window at a time, float image and logits at full size);
- ``mmseg_inferencer``: ``mmseg.apis.MMSegInferencer`` (its pipeline, then the
  model's own ``test_step``).

Each returns seconds, megapixels per second, peak RSS above the built model and
the mask, so the caller can say which share of pixels a speed option changes.
"""
import time
from typing import Optional

import numpy as np
import torch

METHODS = ('infer', 'mmseg_slide', 'mmseg_inferencer')


def synthetic_scan(size: int, seed: int = 0, tile: int = 256) -> np.ndarray:
    """A size x size BGR uint8 'scan' tiled from demo artworks (paper, canvas,
    photographs with damage), deterministic for a seed."""
    from ..data_prep.demo_generator import MATERIAL_CONTENT, render_sample
    rng = np.random.default_rng(seed)
    materials = sorted(MATERIAL_CONTENT)
    tiles = [render_sample(rng, tile, materials[i % len(materials)])[0]
             for i in range(8)]
    scan = np.empty((size, size, 3), dtype=np.uint8)
    for k, y in enumerate(range(0, size, tile)):
        for j, x in enumerate(range(0, size, tile)):
            piece = tiles[(k * 3 + j) % len(tiles)]
            scan[y:y + tile, x:x + tile] = piece[:size - y, :size - x]
    return scan


def run_method(method: str, model_source: str, checkpoint: Optional[str], size: int,
               window_batch: Optional[int] = None, bf16: bool = False,
               device: str = 'cpu') -> dict:
    """Build the model, time one scan with ``method``; dict with seconds,
    mpix_per_s, base_mib, peak_mib, windows and the (H, W) uint8 mask."""
    from mmseg.apis import MMSegInferencer
    from mmseg.models.segmentors import EncoderDecoder

    from ..apis import count_windows, inference_model_cfg, init_model, predict_class_ids
    from ..utils.memory import peak_rss_mib, reset_peak_rss
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    options = {}
    if window_batch is not None:
        options['model.test_cfg.batch_size'] = window_batch
    if bf16:
        options['model.test_cfg.autocast_dtype'] = 'bfloat16'
    torch.manual_seed(0)  # an untrained model gets the same weights in every process
    model = init_model(model_source, checkpoint, device=device, cfg_options=options)
    image = synthetic_scan(size)
    inferencer = None
    if method == 'mmseg_inferencer':
        # its own build of the config must not fetch pretrained weights either
        cfg = model.cfg.copy()
        cfg.model = inference_model_cfg(cfg)
        inferencer = MMSegInferencer(model=cfg, weights=model.checkpoint_path, device=device)
        inferencer.model = model  # the same weights, and no second copy
    with torch.inference_mode():  # warm-up: one window
        crop = tuple(model.test_cfg.get('crop_size', (size, size)))
        predict_class_ids(model, image[:crop[0], :crop[1]])
    base = reset_peak_rss()
    start = time.perf_counter()
    with torch.inference_mode():
        if method == 'infer':
            mask = predict_class_ids(model, image)
        elif method == 'mmseg_inferencer':
            mask = inferencer(image, return_datasamples=True).pred_sem_seg.data[0]
            mask = mask.cpu().numpy().astype(np.uint8)
        else:
            batch = model.data_preprocessor(
                dict(inputs=[torch.from_numpy(image.transpose(2, 0, 1).copy())],
                     data_samples=None), False)['inputs']
            metas = [dict(ori_shape=(size, size), img_shape=(size, size),
                          pad_shape=(size, size))]
            runner = model._inference_model() if hasattr(model, '_inference_model') \
                else model
            logits = EncoderDecoder.slide_inference(runner, batch, metas)
            mask = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, mpix_per_s=size * size / 1e6 / seconds, base_mib=base,
                peak_mib=peak_rss_mib(), windows=count_windows(model, (size, size)),
                mask=mask)
