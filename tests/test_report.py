"""``hwnorm report``: the files of a report set and the figures in them."""

from __future__ import annotations

import json

import numpy as np

from hwnorm.cli import main
from hwnorm.sim.job import Job
from hwnorm.sim.verify import rtl_predictions

PNG = b"\x89PNG\r\n\x1a\n"


def test_block_report_with_synthesis(tmp_path, capsys, sim):
    cfg = tmp_path / "d.toml"
    cfg.write_text('[[design]]\nname = "bn"\nkind = "qbn"\nmodel = "TFC_1W1A"\nlayer = "scores"\npe = 5\n')
    out = tmp_path / "rep"
    assert main(["report", str(cfg), "-o", str(out), "--sim", sim, "--vectors", "40", "--targets", "ice40",
                 "--no-fmax"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bn.json", "bn.md", "bn_cycles.png", "bn_resources.png",
                                                     "designs.md"]
    fig = json.loads((out / "bn.json").read_text())
    assert fig["rtl"]["mismatches"] == 0 and fig["rtl"]["vectors"] == 40
    fr = fig["rtl"]["full_rate"]
    assert fr["beats_at_predicted_clock"] == fr["beats"] == 40 * 2      # 10 channels, 5 lanes
    assert fr["latency"] == fig["cycles"]["design"]["latency"]
    assert fr["clocks_per_vector"] == fig["cycles"]["design"]["cycles_per_vector"]
    syn = fig["resources"]["ice40"]["synthesis"]["counts"]
    md = (out / "bn.md").read_text()
    assert "**0 mismatches**" in md and f"| ice40 | LUT | {fig['resources']['ice40']['estimate']['lut']} | " \
        f"{syn['lut']} |" in md
    assert (out / "bn_cycles.png").read_bytes().startswith(PNG)
    assert "[bn](bn.md)" in (out / "designs.md").read_text()


def test_network_report_of_a_user_folding_without_synthesis(tmp_path, any_sim):
    from hwnorm import data
    fold = tmp_path / "fold.toml"
    fold.write_text("[MatMul_16]\npe = 8\nsimd = 28\n")
    out = tmp_path / "rep"
    model = str(data.path("models/TFC_1W1A.onnx"))
    assert main(["report", model, "--folding", str(fold), "-o", str(out), "--sim", any_sim, "--vectors", "30",
                 "--images", "20", "--no-synth"]) == 0
    fig = json.loads((out / "top.json").read_text())
    assert fig["accuracy"]["images"] == 10_000 and fig["accuracy"]["top1"] == 0.9296  # see README
    assert fig["accuracy"]["cosimulated_images"] == 30
    # two figures computed apart: from the classes the RTL wrote, and from the golden model
    assert fig["accuracy"]["rtl_top1_on_cosimulated"] == fig["accuracy"]["golden_top1_on_cosimulated"]
    assert fig["cycles"]["design"]["cycles_per_vector"] == (784 // 28) * (64 // 8)
    assert fig["rtl"]["full_rate"]["beats_at_predicted_clock"] == 30
    assert (out / "top_energy.png").read_bytes().startswith(PNG)
    assert "synthesis" not in fig["resources"]["ecp5"] and fig["resources"]["ecp5"]["estimate"]["lut"] > 0


def test_report_leaves_the_previous_set_when_it_fails(tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "designs.md").write_text("old")
    assert main(["report", "--design", "nope", "-o", str(out)]) == 2
    assert (out / "designs.md").read_text() == "old" and "no design named nope" in capsys.readouterr().err


def test_rtl_predictions_come_from_the_rtl_output_beats():
    def job(**kw):
        return Job(block="b", seed=0, p_valid=1.0, p_ready=1.0, inputs=[], expected=[], in_bits=1, vector_ids=[], **kw)
    argmax = job(vectors=3, out_beats_per_vector=1, out_lanes=1, out_width=4, out_signed=False, argmax_output=True)
    assert rtl_predictions(argmax, [7, 0, 9]).tolist() == [7, 0, 9]
    assert rtl_predictions(argmax, [7, None, 9]) is None         # an undefined (x/z) beat
    assert rtl_predictions(argmax, [7, 0]) is None               # a missing beat
    raw = job(vectors=2, out_beats_per_vector=2, out_lanes=2, out_width=8, out_signed=True, argmax_output=False)
    beat = lambda a, b: (a & 0xFF) | ((b & 0xFF) << 8)  # noqa: E731
    # image 0 scores (-3, 5 | 5, 1): the first index of the maximum; image 1 (-1, -2 | -9, -1)
    got = rtl_predictions(raw, [beat(-3, 5), beat(5, 1), beat(-1, -2), beat(-9, -1)])
    assert got.tolist() == [1, 0] and isinstance(got, np.ndarray)


def test_multibit_report_shows_both_activation_realizations_and_builds_the_cheaper(tmp_path):
    out = tmp_path / "rep"
    assert main(["report", "TFC_2W2A", "--activations", "auto", "-o", str(out), "--sim", "none", "--images", "20",
                 "--targets", "ice40", "--no-synth"]) == 0
    fig = json.loads((out / "top.json").read_text())
    assert fig["accuracy"]["top1"] == 0.966  # see README: the executor's 96.60%, 0 disagreements
    rows = fig["activation_realizations"]
    assert [r["layer"] for r in rows] == ["Quant_13_input", "MatMul_20", "MatMul_32", "MatMul_44"]
    built = fig["parameters"]["activations"]
    for c in fig["parameters"]["activation_costs"]:  # auto: the smaller estimate on the design's target
        assert built[c["layer"]] == c["chosen"] == ("requant" if c["requant_luts"] < c["thresholds_luts"]
                                                    else "thresholds")
    assert all(r["requant"]["ice40"]["estimate"] > 0 for r in rows)
    assert "## Activations: thresholds or requantizer" in (out / "top.md").read_text()
