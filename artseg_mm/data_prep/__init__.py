"""data_prep: making ARTeFACT data roots, apart from the dataset that reads them.

- ``converter``: the ARTeFACT parquet release -> a data root (``tools/dataset_converters/artefact.py``),
  from ``parquet_source`` (shards and their rows), ``splits`` (which image goes where),
  ``row_decoding`` (one row's image and mask, checked), ``resize_and_tile`` (huge rows),
  ``converter_rows`` (writing them) and ``class_stats`` (pixel counts, class weights);
- ``demo_generator``: a synthetic data root (``tools/misc/make_demo_data.py``), painted by
  ``demo_painting`` and damaged by ``demo_damage``;
- ``folds``: leave-one-group-out split files of a data root (``tools/misc/make_folds.py``).

What they write is defined once, in ``artseg_mm.datasets.layout``. Nothing here is imported by
``import artseg_mm``: training and testing need none of it.
"""
