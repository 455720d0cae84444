"""Benchmarks of artseg_mm: how fast and how memory-hungry our models are, measured
against their peers and across the settings users choose.

They live beside the package, not in it: they build the study configs of this
checkout (``configs/``), need peers the package does not (segmentation-models-pytorch)
and are run by hand, from the repository root, one script a measurement::

    python -m benchmarks.peers           # ours vs smp, mmseg: train, inference, memory, bf16
    python -m benchmarks.slide           # our batched sliding windows vs mmseg's loop
    python -m benchmarks.scan            # one large scan: infer.py's path vs mmseg's
    python -m benchmarks.window_overlap --scan-model WORK_DIR  # overlap, window: time, mIoU
    python -m benchmarks.fps CONFIG CHECKPOINT  # mmseg's benchmark.py, images per second
    python -m benchmarks.demo_training   # demo training time per dataloader workers x threads

Each measures rows of data and prints them as a markdown table (:mod:`benchmarks.table`)
with the command that made it, also written to ``--out`` (``fps`` keeps mmseg's printed
lines and JSON file). ``tools/analysis_tools/benchmark.py`` and ``time_demo_training.py``
keep their old command lines, forwarding to these.
"""
