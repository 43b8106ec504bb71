"""Amaranth components generated from the golden models' frozen specs (one file per block).

Every component states its ``latency`` (cycles from an accepted input to its output being valid)
and ``initiation_interval`` (cycles between accepted inputs at full rate); the estimators read them
from the component, not from a second copy.
"""
