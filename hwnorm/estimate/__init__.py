"""Estimators: cycles (``cycles.py``), energy (``energy.py``) and resources (``resources.py``).

Each reads the same frozen specs and the generated components' own models; none keeps a second
copy of a width, latency or folding rule.
"""
