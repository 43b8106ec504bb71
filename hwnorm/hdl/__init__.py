"""Amaranth components generated from the golden models' frozen specs (one file per block).

    common.py   shapes from integer ranges, adder tree, ROMs, the spec's rounding shift, stall-all pipeline
    bn.py       BNRequant      ← hwnorm.qbn.BNSpec
    mvu.py      MVU            ← hwnorm.ir.MVTU (weights + ThresholdSpec), Thresholding ← InputThreshold
    stt.py      STTEncoder / STTDecoder ← hwnorm.stt.CodecSpec
    stream.py   Gather / Split lane converters, StreamFIFO, ArgMax
    top.py      NetworkTop     ← hwnorm.ir.Network (+ folding)
    names.py    identifiers that reach Verilog

Every component has stream ports ``i`` / ``o`` (``amaranth.lib.stream``, valid/ready) and states
its cycle model: ``in_beats`` / ``out_beats`` per vector, ``latency`` (pipeline depth in clocks;
see each class), ``initiation_interval`` (clocks per vector at full rate) and ``schedule(arrivals)``,
the cycle model the network top composes and the tests hold against the simulation. The
estimators read these from the component, not from a second copy.
"""
