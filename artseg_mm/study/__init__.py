"""The encoder study: comparison of trained runs with intervals and paired tests
(``comparison``), its tables and figures (``report``) and FLOPs counted one way
(``flops``).

Not imported by ``import artseg_mm``: it pulls in matplotlib, which training does
not need. ``tools/analysis_tools/compare.py`` and ``get_flops.py`` import it.
"""
