"""Names that reach Verilog: model and spec names are sanitized, user-chosen top names are checked.

Layer names come from ONNX files and JSON specs, i.e. from outside. Yosys would emit an odd name
as an escaped identifier (``\\name``), which ends at the first whitespace — a name such as
``"x ; endmodule module evil"`` could then smuggle text into the netlist. Every name is therefore
reduced to ``[A-Za-z_][A-Za-z0-9_]*`` before Amaranth sees it.
"""

from __future__ import annotations

import re

__all__ = ["sanitize", "check_identifier", "unique_names", "VERILOG_KEYWORDS"]

MAX_LENGTH = 64

# IEEE 1364-2005 / 1800-2017 keywords a generated name must not collide with.
VERILOG_KEYWORDS = frozenset("""
always always_comb always_ff always_latch and assert assign assume automatic begin bind bit break buf bufif0
bufif1 byte case casex casez cell chandle class clocking cmos config const constraint context continue cover
deassign default defparam design disable do edge else end endcase endclass endclocking endconfig endfunction
endgenerate endinterface endmodule endpackage endprimitive endprogram endproperty endspecify endsequence
endtable endtask enum event export extends extern final for force foreach forever fork function generate
genvar highz0 highz1 if iff ifnone import incdir include initial inout input inside instance int integer
interface join join_any join_none large liblist library local localparam logic longint macromodule modport
module nand negedge new nmos nor noshowcancelled not notif0 notif1 null or output package packed parameter
pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup pulsestyle_ondetect
pulsestyle_onevent rand randc rcmos real realtime reg release repeat return rnmos rpmos rtran rtranif0
rtranif1 scalared sequence shortint shortreal showcancelled signed small solve specify specparam static
string strong0 strong1 struct super supply0 supply1 table task this time timeprecision timeunit tran tranif0
tranif1 tri tri0 tri1 triand trior trireg type typedef union unique unsigned use uwire var vectored virtual
void wait wand weak0 weak1 while wildcard wire with within wor xnor xor
""".split())

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def sanitize(name: str, fallback: str = "n") -> str:
    """A legal, keyword-free Verilog identifier derived from ``name`` (never empty)."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_")[:MAX_LENGTH] or fallback
    if out[0].isdigit():
        out = f"{fallback}_{out}"[:MAX_LENGTH]
    if out.lower() in VERILOG_KEYWORDS:
        out += "_"
    return out


def check_identifier(name: str, what: str) -> str:
    """``name`` unchanged if it is a legal Verilog identifier, else a clear error."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or len(name) > MAX_LENGTH:
        raise ValueError(f"{what} {name!r} is not a legal Verilog identifier: use up to {MAX_LENGTH} letters, "
                         "digits and '_', starting with a letter or '_'")
    if name.lower() in VERILOG_KEYWORDS:
        raise ValueError(f"{what} {name!r} is a Verilog keyword")
    return name


def unique_names(names: list[str]) -> list[str]:
    """Sanitized names, made unique with ``_2``, ``_3`` … suffixes."""
    taken: set[str] = set()
    out = []
    for n in names:
        base = candidate = sanitize(n)
        k = 1
        while candidate in taken:
            k += 1
            candidate = f"{base}_{k}"
        taken.add(candidate)
        out.append(candidate)
    return out
