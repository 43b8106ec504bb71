"""The netlist passes between synthesis and place and route (hwnorm.estimate.netlist)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from hwnorm.estimate.devices import device_named
from hwnorm.estimate.netlist import absorb_bram_output_registers
from hwnorm.estimate.synthesis import TARGETS, load_targets, place_and_route

CLK, CE, OTHER_CLK, RST = 2, 3, 4, 5


def _ram(width=36, first=100, **params):
    """A DP16KD whose read data (port B, or both buses at 36 bits) starts at net ``first``."""
    ports = {"CLKA": ["0"], "CLKB": [CLK], "CEB": [CE], "OCEA": ["0"], "OCEB": ["1"], "RSTA": ["0"], "RSTB": ["0"]}
    directions = {p: "input" for p in ports}
    buses = "AB" if width == 36 else "B"
    for k, (bus, i) in enumerate((b, i) for b in buses for i in range(18)):
        ports[f"DO{bus}{i}"] = [first + k]
        directions[f"DO{bus}{i}"] = "output"
    return {"type": "DP16KD", "connections": ports, "port_directions": directions,
            "parameters": {"DATA_WIDTH_A": f"{width:032b}", "DATA_WIDTH_B": f"{width:032b}", "REGMODE_A": "NOREG",
                           "REGMODE_B": "NOREG", "CLKAMUX": "CLKA", "CLKBMUX": "CLKB", "RESETMODE": "SYNC",
                           **params}}


def _ff(d, q, clk=CLK, ce=CE, lsr="0", cemux="CE"):
    return {"type": "TRELLIS_FF", "parameters": {"CEMUX": cemux, "CLKMUX": "CLK", "REGSET": "RESET"},
            "port_directions": {"CLK": "input", "CE": "input", "LSR": "input", "DI": "input", "Q": "output"},
            "connections": {"CLK": [clk], "CE": [ce], "LSR": [lsr], "DI": [d], "Q": [q]}}


def _netlist(width=36, **ff):
    cells = {"ram": _ram(width)}
    n = 36 if width == 36 else 18
    for k in range(n):
        cells[f"ff{k}"] = _ff(100 + k, 200 + k, **ff)
    ports = {"out": {"direction": "output", "bits": [200 + k for k in range(n)]}}
    return {"modules": {"top": {"cells": cells, "ports": ports, "netnames": {}}}}


def test_the_register_after_a_block_ram_moves_into_it():
    netlist = _netlist()
    result = absorb_bram_output_registers(netlist, "top")
    cells = netlist["modules"]["top"]["cells"]
    assert (result.changed, result.removed) == (1, 36) and list(cells) == ["ram"]
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEB"] == [CE]           # the registers' enable, not the RAM's "1"
    # the RAM now drives what the registers drove
    assert [ram["connections"][f"DO{b}{i}"][0] for b in "AB" for i in range(18)] == list(range(200, 236))
    assert "36 read-data registers moved into 1 block RAM output registers" == result.text()


def test_an_18_bit_port_and_registers_without_an_enable():
    netlist = _netlist(width=18, cemux="1")
    result = absorb_bram_output_registers(netlist, "top")
    ram = netlist["modules"]["top"]["cells"]["ram"]
    assert result.removed == 18 and ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["parameters"]["REGMODE_A"] == "NOREG" and ram["connections"]["OCEB"] == ["1"]


def _shared(netlist):  # a read-data bit that also feeds logic
    netlist["modules"]["top"]["cells"]["lut"] = {"type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                                                 "parameters": {}, "connections": {"A": [105], "Z": [300]}}


def _two_enables(netlist):
    netlist["modules"]["top"]["cells"]["ff7"]["connections"]["CE"] = [OTHER_CLK]


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda n: _shared(n), id="a-bit-also-feeds-logic"),
    pytest.param(lambda n: _two_enables(n), id="two-clock-enables"),
    pytest.param(lambda n: n["modules"]["top"]["cells"]["ff3"]["connections"].update(LSR=[RST]), id="a-reset"),
    pytest.param(lambda n: n["modules"]["top"]["cells"]["ff3"]["connections"].update(CLK=[OTHER_CLK]),
                 id="another-clock"),
    pytest.param(lambda n: n["modules"]["top"]["cells"]["ff3"]["parameters"].update(CEMUX="INV"),
                 id="an-inverted-enable"),
    pytest.param(lambda n: n["modules"]["top"]["cells"]["ram"]["parameters"].update(REGMODE_B="OUTREG"),
                 id="already-registered"),
    pytest.param(lambda n: n["modules"]["top"]["cells"]["ram"]["connections"].update(RSTB=[RST]),
                 id="a-ram-reset"),
])
def test_a_register_the_ram_could_not_copy_stays_in_the_fabric(spoil):
    netlist = _netlist()
    spoil(netlist)
    before = copy.deepcopy(netlist)
    assert absorb_bram_output_registers(netlist, "top").changed == 0
    assert netlist == before


def test_targets_name_their_passes_and_an_unknown_one_is_refused(tmp_path):
    assert TARGETS["ecp5"].netlist_passes == ("bram_output_register",)
    assert TARGETS["ice40"].netlist_passes == ()
    text = (tmp_path / "t.toml")
    text.write_text('[x]\ndescription = ""\nsynth = "synth_ecp5"\nnextpnr = ""\ndevice = ""\n'
                    'netlist_passes = ["retime_everything"]\n[x.cells]\n')
    with pytest.raises(ValueError, match="x.netlist_passes: no pass 'retime_everything'"):
        load_targets(text)


# A ROM read on every clock into a register, as the generated MVUs read their weights.
_ROM_TOP = """
module rom_top (input clk, input rst, input [8:0] i__payload, input i__valid, output i__ready,
                output [35:0] o__payload, output o__valid, input o__ready);
  reg [35:0] mem [0:511];
  integer k;
  initial for (k = 0; k < 512; k = k + 1) mem[k] = (k * 36'd1234567 + 36'd89) ^ (k << 27);
  reg [35:0] read, held;
  reg v1, v2;
  always @(posedge clk) if (o__ready) begin
    read <= mem[i__payload]; held <= read; v1 <= i__valid; v2 <= v1;
  end
  assign o__payload = held, o__valid = v2, i__ready = o__ready;
endmodule
"""
_ROM_PORTS = [{"name": "i__payload", "width": 9}, {"name": "o__payload", "width": 36}]


def test_place_and_route_times_the_ram_with_its_output_register(tmp_path):
    """On a real netlist: Yosys maps the ROM to a DP16KD without its register, the pass moves the
    36 flip-flops after it in, and nextpnr (seed 1, deterministic) reaches a higher Fmax."""
    small = TARGETS["ecp5"].on(device_named("LFE5U-25F"))
    with_pass = place_and_route(_ROM_TOP, "rom_top", _ROM_PORTS, small, cache_dir=tmp_path)
    without = place_and_route(_ROM_TOP, "rom_top", _ROM_PORTS, replace(small, netlist_passes=()),
                              cache_dir=tmp_path)
    assert with_pass.fits and without.fits
    assert with_pass.passes == ("36 read-data registers moved into 1 block RAM output registers",)
    assert without.passes == ()
    assert with_pass.fmax_mhz > without.fmax_mhz
