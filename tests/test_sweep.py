"""``hwnorm sweep``: sweep files, the Pareto front, and the same results on local processes and
on a local Dask cluster."""

from __future__ import annotations

import json
import re

import pytest

from hwnorm.cli import main
from hwnorm.sweep import load_sweep, pareto, points, run_sweep

DESIGN = 'kind = "design"\n[base]\nimages = 20\ntarget = "ice40"\n[axes]\nthroughput = [3e5, 2e6]\nclock_mhz = [100, 200]\n'
FAULTS = 'kind = "faults"\n[axes]\ncodec = ["none", "backup+rearrange"]\nber = [1e-2]\nseed = [0, 1]\n'
WEIGHTS = ('kind = "weights"\n[base]\nimages = 300\n[axes]\nmodel = ["TFC_1W1A", "CNV_MNIST_1W1A"]\n'
           'codec = ["none", "remap+backup"]\nber = [0, 0.2]\nseed = [1]\n')


def sweep_file(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_points_are_every_combination_in_order(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, DESIGN))
    assert points(sweep) == [{"throughput": 3e5, "clock_mhz": 100}, {"throughput": 3e5, "clock_mhz": 200},
                             {"throughput": 2e6, "clock_mhz": 100}, {"throughput": 2e6, "clock_mhz": 200}]


@pytest.mark.parametrize("text, message", [
    ('kind = "chaos"\n[axes]\nseed = [1]\n', "kind = 'chaos' is not allowed; allowed: design, faults, weights"),
    ('kind = "weights"\n[axes]\nmodel = ["nope.onnx"]\n', "model 'nope.onnx' is neither a vendored model"),
    ('kind = "weights"\n[axes]\ncodec = ["backup"]\n', "codec 'backup' is not a weight codec; allowed: none"),
    ('kind = "weights"\n[base]\nimages = 5000\n[axes]\nseed = [1]\n',
     "images must be a whole number in 1..2000 (test_images = 'held-out' has 2000"),
    ('kind = "weights"\n[base]\ntest_images = "all"\nimages = 10001\n[axes]\nseed = [1]\n',
     "images must be a whole number in 1..10000 (test_images = 'all' has 10000"),
    ('kind = "weights"\n[base]\ntest_images = "train"\n[axes]\nseed = [1]\n',
     "test_images = 'train' is not allowed; allowed: all, held-out"),
    ('kind = "weights"\n[base]\nvectors = 5\n[axes]\nseed = [1]\n', "unknown key base.vectors for a weights sweep"),
    ('kind = "weights"\n[axes]\nclock_mhz = [1]\n', "unknown axis 'clock_mhz' for a weights sweep; allowed: model"),
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


@pytest.mark.parametrize("text", [DESIGN, FAULTS, WEIGHTS], ids=["design", "faults", "weights"])
def test_local_processes_and_a_dask_cluster_give_the_same_results(tmp_path, dask_cluster, text):
    sweep = load_sweep(sweep_file(tmp_path, text))
    local = run_sweep(sweep, workers=2)
    remote = run_sweep(sweep, scheduler=dask_cluster)
    assert local == remote and len(local) == len(points(sweep))
    if sweep["kind"] == "design":
        for row in local:
            assert row["clocks_per_image"] <= row["clock_mhz"] * 1e6 / row["throughput"]
            assert row["lut"] > 0 and row["energy_pj"] > 0
    elif sweep["kind"] == "weights":
        for row in local:  # no faults: the stored weights read back exactly, whatever the codec
            assert (row["bit_flips"] == 0) == (row["ber"] == 0) and row["images"] == 300
            if row["ber"] == 0:
                assert row["accuracy"] == row["clean_accuracy"] > 0.85
        by = {(r["model"], r["codec"], r["ber"]): r for r in local}
        for model in ("TFC_1W1A", "CNV_MNIST_1W1A"):  # the golden model of the faulty memories is hit
            assert by[(model, "none", 0.2)]["accuracy"] < by[(model, "none", 0)]["accuracy"]
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


@pytest.fixture
def listener():
    """A TCP listener on a free port that accepts, and answers with ``reply`` (None: never)."""
    import socket
    import threading

    servers = []

    def start(reply):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        servers.append(srv)

        def serve():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            servers.append(conn)
            if reply:
                conn.sendall(reply)
        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    yield start
    for s in servers:
        s.close()


def test_a_listener_that_never_answers_is_a_clear_error_not_a_hang(listener):
    from hwnorm.sweep import probe_scheduler
    with pytest.raises(ValueError, match=r"accepted the connection but sent nothing in 0.5 s"):
        probe_scheduler(listener(None), timeout=0.5)


def test_a_service_that_is_not_dask_is_a_clear_error_not_an_allocation(listener, tmp_path, capsys):
    address = listener(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert main(["sweep", str(sweep_file(tmp_path, FAULTS)), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert "does not answer like a Dask scheduler" in err and "Traceback" not in err


@pytest.mark.parametrize("base, message", [
    ('colour = "red"', "unknown key base.colour for a faults sweep; allowed: cells, codec, ber, seed"),
    ("cells = 7", "base.cells must be a cell table name or file"),
    ('cells = "missing.toml"', "missing.toml"),
    ("ber = 2.0", "ber must be in (0, 0.5]"),
])
def test_a_faults_sweep_checks_its_base(tmp_path, base, message):
    path = tmp_path / "faults.toml"
    path.write_text(f'kind = "faults"\n[base]\n{base}\n[axes]\nseed = [0]\n')
    with pytest.raises(ValueError, match=re.escape(message)):
        load_sweep(path)


def test_a_faults_sweep_uses_the_cell_table_of_its_base(tmp_path, monkeypatch):
    import hwnorm.stt as stt
    import hwnorm.sweep
    from hwnorm.sweep import evaluate
    path = tmp_path / "faults.toml"
    path.write_text('kind = "faults"\n[base]\ncells = "public-code"\nber = 0.01\n[axes]\nseed = [3]\n')
    sweep = load_sweep(path)
    asked = []
    real = stt.load_table
    monkeypatch.setattr(hwnorm.sweep, "load_table", lambda source=None: asked.append(source) or real(source))
    row = evaluate((sweep, points(sweep)[0]))
    assert asked == ["public-code"] and row["cells"] == "public-code" and row["ber"] == 0.01 and row["seed"] == 3


def test_a_device_axis_folds_each_point_for_its_part(tmp_path):
    from hwnorm.estimate.devices import DEVICES
    from hwnorm.estimate.synthesis import TARGETS
    from hwnorm.sweep import evaluate
    sweep = load_sweep(sweep_file(tmp_path, 'kind = "design"\n[base]\ntarget = "ecp5"\nimages = 20\n'
                                             '[axes]\ndevice = ["iCE40UP5K", "LFE5U-25F"]\n'))
    rows = [evaluate((sweep, p)) for p in points(sweep)]
    assert [(r["device"], r["target"]) for r in rows] == [("iCE40UP5K", "ice40"), ("LFE5U-25F", "ecp5")]
    for r in rows:
        assert r["folding_how"].startswith(f"fastest fitting the {r['device']}")
        assert DEVICES[r["device"]].fits(TARGETS[r["target"]].usage({k: r[k] for k in ("lut", "ff", "bram", "dsp")}))


@pytest.mark.parametrize("name", ["sweep_design.toml", "sweep_faults.toml", "sweep_weights.toml",
                                  "sweep_qnn_faults.toml"])
def test_the_example_sweeps_load(name):
    from pathlib import Path
    sweep = load_sweep(Path(__file__).resolve().parent.parent / "examples" / name)
    assert points(sweep)
