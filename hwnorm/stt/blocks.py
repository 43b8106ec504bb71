"""The STT-RAM codecs as hardware blocks (:mod:`hwnorm.blocks`): cycle model and resource
inventory from a :class:`~hwnorm.stt.codecs.CodecSpec` alone; ``component()`` builds the
Amaranth encoder / decoder (:mod:`hwnorm.hdl.stt`).

Both are one registered stage, one block (``block_words`` FP16 words) per clock: latency 1, plus
the ranks a target clock adds to the encoder's cost chain (``cost_cuts``)::

    encoder in   words[16·W]          word j at bits [16j, 16j+16)  (FP16 bit patterns)
    encoder out  cells[2·C]           cell c at bits [2c, 2c+2): bit 2c = soft, bit 2c+1 = hard
    decoder in   cells[2·C]           as the encoder's output
    decoder out  words[16·W] status[2]  status 0 clean, 1 corrected, 2 detected
"""

from __future__ import annotations

import numpy as np

from hwnorm.blocks import CARRY_FEATURES, REGISTER_FF, BeatPipeline, CalibrationPoint, Inventory, tree_register_bits
from hwnorm.datatypes import IntType
from hwnorm.stt.codecs import HDL_CODECS, STATE_COST_MAX, STATUS_BITS, CodecSpec, cost_type
from hwnorm.timing import tree_levels
from hwnorm.sim.jobs import stt_decoder_job, stt_encoder_job

__all__ = ["HDL_CODECS", "STTEncoderBlock", "STTDecoderBlock", "cost_type"]



def _random_words(spec: CodecSpec, n: int, rng) -> np.ndarray:
    return rng.integers(0, 1 << 16, n * spec.block_words).astype(np.uint16) & np.uint16(0xBFFF)


def _codec_points(kind: str) -> tuple:
    """The codecs at block sizes other than the default designs' (see CalibrationPoint)."""
    return tuple(CalibrationPoint(f"cal_{kind}_{codec.replace('+', '_')}_{words}", {"codec": codec, "block_words": words})
                 for codec, words in (("none", 1), ("backup", 1), ("rearrange", 1), ("rearrange", 2),
                                      ("backup+rearrange", 1), ("backup+rearrange", 8)))


class _CodecBlock(BeatPipeline):
    @property
    def depth(self) -> int:
        return 1 + len(self.cost_cuts)

    cost_cuts = ()  # register ranks the target clock adds (the encoder's cost chain)

    def __init__(self, spec: CodecSpec, in_type: IntType, out_type: IntType):
        if spec.codec not in HDL_CODECS or spec.write_aware:
            raise ValueError(f"codec {spec.label!r} has no hardware codec yet; available: {', '.join(HDL_CODECS)}")
        self.spec, self.in_type, self.out_type = spec, in_type, out_type


class STTEncoderBlock(_CodecBlock):
    """FP16 words → MLC cell states of one codec block."""

    kind = "stt_encoder"
    cost_features = {"stt_encoder": {"lut": ("blocks", "adder", "logic"), "ff": REGISTER_FF, "carry": CARRY_FEATURES}}
    calibration_points = _codec_points(kind)

    def __init__(self, spec: CodecSpec):
        super().__init__(spec, IntType(16 * spec.block_words), IntType(2 * spec.cells_per_block))

    @property
    def cost_tree_levels(self) -> int:
        """Levels of the per-transform cost tree (the moved cells' costs and the flags' cost)."""
        spec = self.spec
        return tree_levels(sum(spec.transformable[k % 8] for k in range(8 * spec.block_words)) + 1)

    @property
    def cost_cuts(self) -> tuple[int, ...]:
        """Register ranks of the transform choice for the target clock: the chain is the cost
        lookup (index 0), the tree levels (1 … L), the two compare levels (L + 1, L + 2), then
        the output XOR."""
        if not self.spec.is_block:
            return ()
        m, width = self.timing.model, cost_type(self.spec).width
        cost_bits = STATE_COST_MAX.bit_length()
        chain = [m.luts(1)] + [m.adder(min(cost_bits + level + 1, width)) for level in range(self.cost_tree_levels)]
        chain += [m.compare(width) + m.luts(1)] * 2
        return self.timing.cuts(chain, tail=m.luts(1))

    def inventory(self) -> Inventory:
        spec = self.spec
        if not spec.is_block:  # a fixed bit permutation
            return Inventory(register=2 * spec.cells_per_block + 1)
        moved = sum(spec.transformable[k % 8] for k in range(8 * spec.block_words))
        width = cost_type(spec).width
        return Inventory(adder=4 * moved * width, compare=3 * width, mux=2 * width + 2,
                         logic=4 * moved * 2 + 2 * moved,
                         register=2 * spec.cells_per_block + 1 + self.pipeline_register_bits(moved, width))

    def pipeline_register_bits(self, moved: int, width: int) -> int:
        """Flip-flops of the cost chain's ranks (hwnorm.timing) and of the cells and valid bit
        that wait beside them."""
        cuts, levels, cost_bits = self.cost_cuts, self.cost_tree_levels, STATE_COST_MAX.bit_length()
        out = 4 * moved * cost_bits if 0 in cuts else 0
        out += 4 * tree_register_bits(moved + 1, cost_bits, [c - 1 for c in cuts if 1 <= c <= levels])
        out += 2 * (width + 2) if levels + 1 in cuts else 0
        out += 2 if levels + 2 in cuts else 0
        return out + len(cuts) * (2 * self.spec.cells_per_block + 1)

    def component(self):
        from hwnorm.hdl.stt import STTEncoder  # Amaranth: loaded when hardware is built
        return STTEncoder(self)

    def job(self, n: int, seed: int) -> dict:
        """``n`` blocks of random FP16 patterns with |x| < 2 (bit 14 clear: what the backup needs)."""
        return stt_encoder_job(self, _random_words(self.spec, n, np.random.default_rng(seed)), seed)


class STTDecoderBlock(_CodecBlock):
    """MLC cell states of one codec block → FP16 words and a status."""

    kind = "stt_decoder"
    cost_features = {"stt_decoder": {"lut": ("blocks", "logic", "mux", "compare"), "ff": REGISTER_FF,
                                     "carry": CARRY_FEATURES}}
    calibration_points = _codec_points(kind)

    def __init__(self, spec: CodecSpec):
        super().__init__(spec, IntType(2 * spec.cells_per_block), IntType(16 * spec.block_words + STATUS_BITS))

    def inventory(self) -> Inventory:
        spec, words = self.spec, self.spec.block_words
        checks = (2 if spec.is_block else 0) + (words if spec.uses_backup else 0)  # repaired cells
        return Inventory(compare=5 * words, mux=16 * words, logic=2 * checks + (16 * words if spec.is_block else 0),
                         register=16 * words + 3)

    def component(self):
        from hwnorm.hdl.stt import STTDecoder  # Amaranth: loaded when hardware is built
        return STTDecoder(self)

    def job(self, n: int, seed: int) -> dict:
        """``n`` encoded blocks with 5% of their cells overwritten at random: soft errors for the
        decoder to repair or flag."""
        rng = np.random.default_rng(seed)
        cells = self.spec.encode(_random_words(self.spec, n, rng).view(np.float16))
        hit = rng.random(cells.shape) < 0.05
        cells[hit] = rng.integers(0, 4, int(hit.sum()), dtype=np.uint8)
        return stt_decoder_job(self, cells, seed)
