"""Batch co-simulation: a free-running Verilog harness streams vectors from a file through the
design and writes every output beat (with its clock cycle) to another file.

Python is not woken once per clock: the harness makes its own clock and reset (no VPI call per
edge either) and the cocotb test only waits for ``done``.

Cycles count rising clock edges after reset, from 0. The first input beat is offered at cycle 0,
so it is taken at cycle 1 at the earliest (a beat is never taken at cycle 0). Valid and ready are still randomized — inside the harness, by two
xorshift32 generators seeded from the job — so long runs keep idle cycles and back-pressure; with
both probabilities at 1 the run measures the design's own timing (one beat offered and taken
whenever the design allows it).

    harness (``hwnorm_batch``)
    ┌───────────────────────────────────────────────────────────────┐
    │ +hwnorm_in file ──$fread─▶ i__payload ┌─────┐ o__payload ─$fwrite─▶ +hwnorm_out file
    │ xorshift < p_valid ──────▶ i__valid   │ DUT │ o__valid           "cycle hexbeat" per line
    │                            i__ready ◀─┤     │ o__ready ◀── xorshift < p_ready
    │                                       └─────┘                 │
    │ done ◀─ all output beats seen, or no handshake for WATCHDOG cycles (timed_out)
    │ first_in_cycle ◀─ cycle of the first input handshake (latency = first output − this)
    └───────────────────────────────────────────────────────────────┘
"""

from __future__ import annotations

from pathlib import Path

from hwnorm.sim.job import Job

__all__ = ["HARNESS_TOP", "HARNESS_PORTS", "WATCHDOG", "harness_verilog", "write_inputs", "plusargs", "read_outputs"]

HARNESS_TOP = "hwnorm_batch"
HARNESS_PORTS = ("done", "timed_out", "first_in_cycle")
FIRST_OFFER_CYCLE = 1  # at full rate input beat k is offered from clock FIRST_OFFER_CYCLE + k on
WATCHDOG = 1 << 20  # cycles without any handshake before the harness gives up (a hung design)
_PROBABILITY_ONE = 1 << 16


def _in_bytes(in_width: int) -> int:
    return max(1, -(-in_width // 8))


def harness_verilog(top: str, in_width: int, out_width: int, own_clock: bool = True) -> str:
    """The harness module around ``top`` (Amaranth stream ports ``i`` / ``o``, clock ``clk``).

    Input beats are read raw with ``$fread`` (whole bytes, big-endian): parsing hex text with
    ``$fscanf`` cost Verilator as much time as simulating the TFC top itself.

    ``own_clock``: the harness makes its clock with delays (``#5``), for an event-driven simulator
    (Icarus under cocotb). Without it the clock is an input and the reset a counter, so the
    harness is plain synchronous logic that a C++ loop clocks (:mod:`hwnorm.sim.native`): under
    ``--timing`` Verilator's coroutine scheduler and cocotb's VPI loop took 4–5× the time of the
    design itself on a CNV top. Both variants number the cycles identically.
    """
    in_bits = 8 * _in_bytes(in_width)
    if own_clock:
        clock_port, clock = "", """    reg         clk;
    reg         rst;

    // 10 ns clock; reset held for the first two rising edges.
    initial clk = 1'b0;
    always #5 clk = ~clk;
    initial begin
        rst = 1'b1;
        repeat (2) @(posedge clk);
        #1 rst = 1'b0;
    end
"""
    else:
        clock_port, clock = "    input  wire clk,\n", """    reg         rst;

    // Reset held for the first two rising edges of the clock the C++ loop drives.
    reg  [1:0]  rst_count = 2'd0;
    always @(posedge clk) if (rst_count != 2'd2) rst_count <= rst_count + 2'd1;
    always @(*) rst = rst_count != 2'd2;
"""
    return f"""// hwnorm batch co-simulation harness around {top} (generated; see hwnorm/sim/batch.py)
module {HARNESS_TOP} (
{clock_port}    output reg  done,
    output reg  timed_out,
    output reg  [63:0] first_in_cycle   // the cycle the design took its first input beat
);
{clock}    reg  [{in_width - 1}:0] in_payload;
    reg  [{in_bits - 1}:0] next_payload;
    reg         in_valid;
    wire        in_ready;
    wire [{out_width - 1}:0] out_payload;
    wire        out_valid;
    reg         out_ready;

    reg  [8*4096-1:0] in_path;
    reg  [8*4096-1:0] out_path;
    integer fin, fout, scanned;
    reg  [31:0] in_left, out_left, p_valid, p_ready, seed, idle;
    reg  [31:0] src_rng, snk_rng;
    reg  [63:0] cycle;

    function [31:0] xorshift32(input [31:0] x);
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift32 = y ^ (y << 5);
        end
    endfunction

    initial begin
        done = 1'b0; timed_out = 1'b0; first_in_cycle = 64'd0; in_valid = 1'b0; out_ready = 1'b0; cycle = 64'd0; idle = 32'd0;
        if (!$value$plusargs("hwnorm_in=%s", in_path) || !$value$plusargs("hwnorm_out=%s", out_path)
            || !$value$plusargs("hwnorm_in_beats=%d", in_left) || !$value$plusargs("hwnorm_out_beats=%d", out_left)
            || !$value$plusargs("hwnorm_p_valid=%d", p_valid) || !$value$plusargs("hwnorm_p_ready=%d", p_ready)
            || !$value$plusargs("hwnorm_seed=%d", seed)) begin
            $display("hwnorm_batch: missing plusargs");
            $finish;
        end
        fin = $fopen(in_path, "rb");
        fout = $fopen(out_path, "w");
        src_rng = seed | 32'd1;
        snk_rng = (seed ^ 32'h9e3779b9) | 32'd1;
    end

    {top} dut (
        .clk(clk), .rst(rst),
        .i__valid(in_valid), .i__ready(in_ready), .i__payload(in_payload),
        .o__valid(out_valid), .o__ready(out_ready), .o__payload(out_payload)
    );

    always @(posedge clk) begin
        if (rst) begin
            in_valid <= 1'b0;
            out_ready <= 1'b0;
            cycle <= 64'd0;
        end else if (!done) begin
            cycle <= cycle + 64'd1;
            src_rng <= xorshift32(src_rng);
            snk_rng <= xorshift32(snk_rng);
            if (in_valid && in_ready && first_in_cycle == 64'd0)
                first_in_cycle <= cycle;
            idle <= ((in_valid && in_ready) || (out_valid && out_ready)) ? 32'd0 : idle + 32'd1;
            if (out_valid && out_ready) begin
                $fwrite(fout, "%0d %h\\n", cycle, out_payload);
                out_left <= out_left - 32'd1;
                if (out_left == 32'd1) begin
                    $fclose(fout);
                    done <= 1'b1;
                end
            end
            out_ready <= {{16'd0, snk_rng[15:0]}} < p_ready;
            if (!in_valid || in_ready) begin
                if (in_left != 32'd0 && {{16'd0, src_rng[15:0]}} < p_valid) begin
                    scanned = $fread(next_payload, fin);
                    in_payload <= next_payload[{in_width - 1}:0];
                    in_valid <= 1'b1;
                    in_left <= in_left - 32'd1;
                end else begin
                    in_valid <= 1'b0;
                end
            end
            if (idle == {WATCHDOG}) begin
                $fclose(fout);
                timed_out <= 1'b1;
                done <= 1'b1;
            end
        end
    end
endmodule
"""


def _threshold(p: float) -> int:
    """A probability → the 16-bit comparison threshold (1 → always)."""
    return min(_PROBABILITY_ONE, max(0, round(p * _PROBABILITY_ONE)))


def write_inputs(job: Job, path: Path, in_width: int) -> None:
    """The input beats as the harness's ``$fread`` takes them: whole bytes, big-endian."""
    size = _in_bytes(in_width)
    path.write_bytes(b"".join(beat.to_bytes(size, "big") for beat in job.inputs))


def plusargs(job: Job, in_path: Path, out_path: Path) -> list[str]:
    return [f"+hwnorm_in={in_path}", f"+hwnorm_out={out_path}", f"+hwnorm_in_beats={len(job.inputs)}",
            f"+hwnorm_out_beats={len(job.expected)}", f"+hwnorm_p_valid={_threshold(job.p_valid)}",
            f"+hwnorm_p_ready={_threshold(job.p_ready)}", f"+hwnorm_seed={job.seed & 0xFFFFFFFF}"]


def read_outputs(path: Path) -> tuple[list[int], list[int | None]]:
    """(cycle of each output beat, its value; None where the simulator printed x or z)."""
    cycles, values = [], []
    if not path.exists():
        return cycles, values
    for line in path.read_text().split("\n"):
        if not line:
            continue
        cycle, text = line.split()
        cycles.append(int(cycle))
        try:
            values.append(int(text, 16))
        except ValueError:
            values.append(None)
    return cycles, values
