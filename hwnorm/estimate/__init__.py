"""Estimators: cycles (``cycles.py``), energy (``energy.py``) and resources (``resources.py``, an
analytic model calibrated against the synthesis runs of ``synthesis.py``); a design's figures
from them (``design.py``) and the calibration of the resource model (``calibration.py``).

Each reads the same frozen specs through the blocks' own models (:mod:`hwnorm.blocks`, never
Amaranth); none keeps a second copy of a width, latency or folding rule. This file imports
nothing: a submodule's import runs it, and the cost models sit below the designs.
"""
