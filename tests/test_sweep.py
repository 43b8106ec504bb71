"""``hwnorm sweep``: sweep files, the Pareto front, and the same results on local processes and
on a local Dask cluster."""

from __future__ import annotations

import json

import pytest

from hwnorm.cli import main
from hwnorm.sweep import load_sweep, pareto, points, run_sweep

DESIGN = 'kind = "design"\n[base]\nimages = 20\ntarget = "ice40"\n[axes]\nthroughput = [3e5, 2e6]\nclock_mhz = [100, 200]\n'
FAULTS = 'kind = "faults"\n[axes]\ncodec = ["none", "backup+rearrange"]\nber = [1e-2]\nseed = [0, 1]\n'


def sweep_file(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_points_are_every_combination_in_order(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, DESIGN))
    assert points(sweep) == [{"throughput": 3e5, "clock_mhz": 100}, {"throughput": 3e5, "clock_mhz": 200},
                             {"throughput": 2e6, "clock_mhz": 100}, {"throughput": 2e6, "clock_mhz": 200}]


@pytest.mark.parametrize("text, message", [
    ('kind = "chaos"\n[axes]\nseed = [1]\n', "kind = 'chaos' is not allowed; allowed: design, faults"),
    ('[axes]\nspeed = [1]\n', "unknown axis 'speed' for a design sweep; allowed: throughput"),
    ('kind = "faults"\n[axes]\nber = []\n', "axes.ber must be a non-empty list"),
    ('kind = "faults"\n[axes]\nber = [0.9]\n', "ber must be in (0, 0.5], got 0.9"),
    ('kind = "faults"\n[axes]\ncodec = ["zip"]\n', "codec 'zip' is not allowed"),
    ('[axes]\ntarget = ["ice40", "stratix"]\n', "(point {'target': 'stratix'}): target = 'stratix' is not allowed"),
    ('[base]\ncolour = 1\n[axes]\nclock_mhz = [100]\n', "unknown key 'colour'"),
    ('[axes]\nclock_mhz = [100]\n[extra]\n', "unknown key 'extra'; allowed: axes, base, kind"),
    ('kind = "design"\n', "[axes] must name at least one axis"),
])
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, text, message):
    with pytest.raises(ValueError) as e:
        load_sweep(sweep_file(tmp_path, text))
    assert message in str(e.value)


def test_pareto_front():
    rows = [{"images_per_s": 10, "lut": 100, "energy_pj": 5}, {"images_per_s": 20, "lut": 200, "energy_pj": 5},
            {"images_per_s": 10, "lut": 150, "energy_pj": 5}, {"images_per_s": 5, "lut": 100, "energy_pj": 4}]
    assert pareto(rows) == [0, 1, 3]  # row 2 is beaten by row 0


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")  # in the dev extra: CI always has it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.mark.parametrize("text", [DESIGN, FAULTS], ids=["design", "faults"])
def test_local_processes_and_a_dask_cluster_give_the_same_results(tmp_path, dask_cluster, text):
    sweep = load_sweep(sweep_file(tmp_path, text))
    local = run_sweep(sweep, workers=2)
    remote = run_sweep(sweep, scheduler=dask_cluster)
    assert local == remote and len(local) == len(points(sweep))
    if sweep["kind"] == "design":
        for row in local:
            assert row["clocks_per_image"] <= row["clock_mhz"] * 1e6 / row["throughput"]
            assert row["lut"] > 0 and row["energy_pj"] > 0
    else:
        by = {(r["codec"], r["seed"]): r for r in local}
        assert by[("backup+rearrange", 0)]["accuracy"] > by[("none", 0)]["accuracy"]  # the codec protects


def test_sweep_command_writes_table_and_plot(tmp_path, dask_cluster, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file(tmp_path, DESIGN)), "-o", str(out), "--scheduler", dask_cluster]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.json", "sweep.md", "sweep_pareto.png"]
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert len(rows) == 4 and any(r["pareto"] for r in rows)
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("throughput,clock_mhz,target,clocks_per_image")


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    assert main(["sweep", str(sweep_file(tmp_path, FAULTS)), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "Traceback" not in err
