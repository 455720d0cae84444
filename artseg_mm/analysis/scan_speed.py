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
``bench_scan``/``child_scan`` make that table, ``bench_slide``/``child_slide``
the ``--slide`` one (our batched sliding windows against mmseg's loop on a
random image).
"""
import os
import time
from typing import Callable, List, Optional

import numpy as np
import torch

from .speed import ROOT, _build_mm, _metas, our_cfg
from .timing import precision_autocast, sync

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


# ------------------------------------------- benchmark.py --slide / --scan
def child_slide(spec: dict, args) -> dict:
    """In a fresh process: our model, sliding-window inference on one
    --slide-size square image with window batch size ``spec['batch']``."""
    from artseg_mm.utils.memory import peak_rss_mib, reset_peak_rss
    device = torch.device(args.device)
    cfg = our_cfg(spec['encoder'], None, args.cfg_options)
    test_cfg = dict(cfg.model.test_cfg)
    test_cfg.update(mode='slide', crop_size=tuple(test_cfg['crop_size']),
                    stride=tuple(test_cfg['stride']), batch_size=spec['batch'])
    cfg.model.test_cfg = test_cfg
    model = _build_mm(cfg.model).to(device).eval()
    s = args.slide_size
    x = torch.randn(1, 3, s, s, device=device)
    crop = test_cfg['crop_size']
    with torch.inference_mode(), precision_autocast(args, device):  # warm-up, one window batch
        warm = torch.randn(spec['batch'], 3, *crop, device=device)
        model.encode_decode(warm, _metas(warm))
    del warm
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = (torch.cuda.memory_allocated() / 2**20 if device.type == 'cuda'
            else reset_peak_rss())
    t0 = time.perf_counter()
    with torch.inference_mode(), precision_autocast(args, device):
        if spec['stock']:
            from mmengine.config import ConfigDict
            from mmseg.models.segmentors import EncoderDecoder
            model.test_cfg = ConfigDict(test_cfg)
            out = EncoderDecoder.slide_inference(model, x, _metas(x))
        else:
            out = model.inference(x, _metas(x))
    sync(device)
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == 'cuda'
            else peak_rss_mib())
    from artseg_mm.models.segmentors import slide_windows
    n_windows = len(slide_windows(s, s, test_cfg['crop_size'], test_cfg['stride']))
    return dict(seconds=seconds, base=base, peak=peak, windows=n_windows,
                output_mib=out.numel() * out.element_size() / 2**20)


def bench_slide(args, child: Callable[[dict], dict], device) -> List[str]:
    rows = ['| encoder | method | window batch | windows | time (s) | '
            'peak memory MiB (above built model) | output MiB |',
            '|---|---|---|---|---|---|---|']
    for encoder in args.encoders:
        runs = [(False, b) for b in args.slide_batch_sizes]
        if not args.no_slide_stock:
            runs.append((True, 1))
        for stock, batch in runs:
            r = child(dict(encoder=encoder, batch=batch, stock=stock, slide=True))
            method = ("mmseg stock slide_inference" if stock
                      else 'ours (batched, in-place accumulation)')
            rows.append(f'| {encoder} | {method} | {batch} | {r["windows"]} | '
                        f'{r["seconds"]:.1f} | {r["peak"]:.0f} ({r["peak"] - r["base"]:.0f}) '
                        f'| {r["output_mib"]:.0f} |')
            print(rows[-1], flush=True)
    return [f'sliding-window inference, 1x3x{args.slide_size}x{args.slide_size}', '',
            *rows]


def child_scan(spec: dict, args) -> dict:
    """In a fresh process: one scan_speed method; the mask goes to a .npy file."""
    import artseg_mm  # noqa: F401
    model = spec['model'] if os.path.isabs(spec['model']) else os.path.join(ROOT, spec['model'])
    result = run_method(spec['method'], model, spec['checkpoint'], spec['size'],
                        spec['batch'], spec['bf16'], args.device)
    np.save(spec['mask_path'], result.pop('mask'))
    return result


def bench_scan(args, child: Callable[[dict], dict], device) -> List[str]:
    import tempfile

    from artseg_mm.engine import cpu_supports_bf16
    bf16 = device.type == 'cuda' or cpu_supports_bf16()
    runs = [('infer', b, False) for b in args.slide_batch_sizes]
    if bf16:
        runs.append(('infer', args.slide_batch_sizes[-1], True))
    runs += [('mmseg_slide', None, False), ('mmseg_inferencer', None, False)]
    rows = ['| method | window batch | precision | windows | time (s) | Mpx/s | '
            'peak RSS above the built model (MiB) | pixels changed vs first row |',
            '|---|---|---|---|---|---|---|---|']
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for k, (method, batch, use_bf16) in enumerate(runs):
            mask_path = os.path.join(tmp, f'{k}.npy')
            r = child(dict(scan=True, method=method, batch=batch, bf16=use_bf16,
                               model=args.scan_model, checkpoint=args.scan_checkpoint,
                               size=args.scan_size, mask_path=mask_path))
            mask = np.load(mask_path)
            reference = mask if reference is None else reference
            changed = float((mask != reference).mean()) * 100
            rows.append(f'| {method} | {batch or "config"} | '
                        f'{"bf16" if use_bf16 else "fp32"} | {r["windows"]} | '
                        f'{r["seconds"]:.1f} | {r["mpix_per_s"]:.3f} | '
                        f'{r["peak_mib"] - r["base_mib"]:.0f} | {changed:.4f}% |')
            print(rows[-1], flush=True)
    note = ('' if bf16 else 'bf16: not run, this CPU has no bf16 kernels '
            '(avx512_bf16/amx_bf16); infer.py --bf16 falls back to fp32 here')
    return [f'one {args.scan_size}x{args.scan_size} scan, model {args.scan_model}', note,
            '', *rows]
