"""Amaranth components, each built from a block of :mod:`hwnorm.blocks` (one module per family of blocks).

    common.py   adder tree, ROMs, the spec's rounding shift, stall-all pipeline, FromBlock
    mvu.py      MVU ← MVUBlock (layer kind mvu), Thresholding ← ThresholdingBlock (thresholding)
    bn.py       BNRequant ← QBNBlock (layer kind qbn)
    stt.py      STTEncoder / STTDecoder ← hwnorm.stt.blocks
    stream.py   Gather / Split lane converters, StreamFIFO, ArgMax ← the plumbing blocks
    window.py   SlidingWindowUnit ← WindowBlock (window), MaxPoolUnit ← MaxPoolBlock (maxpool)
    top.py      NetworkTop ← hwnorm.dataflow.NetworkBlock (one component per stage)
    names.py    identifiers that reach Verilog
    verilog.py  a component → its Verilog text (the one conversion)

Every component has stream ports ``i`` / ``o`` (``amaranth.lib.stream``, valid/ready) declared
from its block's element types and lanes. The cycle model (beats per vector, latency, initiation
interval, ``schedule``) and the resource inventory belong to the block, computed from the spec and
the folding without Amaranth; a component only answers them on its block's behalf
(``FromBlock``), and the tests hold the simulation to them. Building a component is the step
reserved for writing Verilog or simulating.
"""
