"""MLC STT-RAM weight-buffer golden model: cell table (data), FP16 codecs, energy accounting and
soft-error injection. See :mod:`hwnorm.stt.cells`, :mod:`hwnorm.stt.codecs`, :mod:`hwnorm.stt.buffer`."""

from hwnorm.stt.buffer import Cost, inject, read_cost, stream_write, write_cost
from hwnorm.stt.cells import STATES, TRANSITIONS, CellTable, load_table, table_from_dict, transition_class
from hwnorm.stt.codecs import BASE_CODECS, CODECS, DEFAULT_PAIRING, CodecSpec, make_codec, map_repair

__all__ = ["BASE_CODECS", "CODECS", "DEFAULT_PAIRING", "STATES", "TRANSITIONS", "CellTable", "CodecSpec", "Cost",
           "inject", "load_table", "make_codec", "map_repair", "read_cost", "stream_write",
           "table_from_dict", "transition_class", "write_cost"]
