"""Output sets under signals: a set of files (across folders) is replaced whole or not at all,
whatever the signal and whichever thread it reaches; temporary files of a killed run are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from hwnorm import io
from hwnorm.io import TEMP_SUFFIX, Terminated, terminate_on_sigterm, write_file_sets
from tests.helpers import terminal_signals

OLD = {"a.v": "old a\n", "manifest.json": "old manifest\n"}
NEW = {"a.v": "new a\n", "manifest.json": "new manifest\n"}


def _folders(tmp_path):
    rtl, reports = tmp_path / "rtl", tmp_path / "reports"
    write_file_sets({rtl: OLD, reports: {"a.md": "old report\n"}})
    return rtl, reports


def _contents(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.parametrize("repeat", range(3))
@pytest.mark.parametrize("signum,raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
@pytest.mark.parametrize("sender", ["main", "worker"])
def test_a_signal_at_the_rename_instant_leaves_the_whole_new_set(tmp_path, monkeypatch, signum, raised, sender,
                                                                 repeat, sigint_raises):
    rtl, reports = _folders(tmp_path)
    real_rename = io._rename
    renames = []

    def rename_and_signal(tmp, final):
        if not renames:  # at the first rename: the signal, from this thread or another one
            if sender == "main":
                os.kill(os.getpid(), signum)
            else:
                t = threading.Thread(target=os.kill, args=(os.getpid(), signum))
                t.start()
                t.join()
            time.sleep(0.01)  # let Python run the handler, if it would
        renames.append(final)
        real_rename(tmp, final)

    monkeypatch.setattr(io, "_rename", rename_and_signal)
    previous = signal.getsignal(signal.SIGTERM)
    terminate_on_sigterm()
    try:
        with pytest.raises(raised):
            write_file_sets({rtl: NEW, reports: {"a.md": "new report\n"}})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(renames) == 3  # held until the last rename, then delivered
    assert _contents(rtl) == NEW and _contents(reports) == {"a.md": "new report\n"}


def test_an_error_before_the_renames_leaves_the_old_set_and_no_temporary_files(tmp_path):
    rtl, reports = _folders(tmp_path)

    class Unwritable:
        pass

    with pytest.raises(TypeError):
        write_file_sets({rtl: NEW, reports: {"a.md": Unwritable()}})
    assert _contents(rtl) == OLD and _contents(reports) == {"a.md": "old report\n"}


def test_temporary_files_of_a_killed_run_are_removed_by_the_next_write(tmp_path):
    rtl, _ = _folders(tmp_path)
    stale = [rtl / f".a.v.x1y2z3{TEMP_SUFFIX}", rtl / ".manifest.json.abcdef.tmp"]
    for p in stale:
        p.write_text("half")
    write_file_sets({rtl: NEW})
    assert _contents(rtl) == NEW


@pytest.mark.parametrize("after", ["[1/6] import", "[2/6] folding"])  # the second: while the Verilog is elaborated
def test_sigterm_on_the_command_line_is_one_line_and_exit_143(tmp_path, after):
    """A real ``hwnorm flow`` killed with SIGTERM once it has started its work: one line, no
    traceback, none of the warnings half-built Amaranth objects give as they are collected."""
    rtl, reports = tmp_path / "rtl", tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "hwnorm.entry", "flow", "-o", str(rtl), "--reports", str(reports),
                             "--sim", "none", "--no-synth"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=terminal_signals)
    seen = []
    for line in proc.stderr:  # the handler is installed before the first stage prints
        seen.append(line)
        if line.startswith(after):
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=300)
    err = "".join(seen) + rest
    assert proc.returncode == 143, err
    assert "hwnorm: terminated" in err and "Traceback" not in err and "UnusedElaboratable" not in err
    assert err.rstrip().endswith("either written whole or left as it was"), err
    assert not rtl.exists() and not reports.exists()  # nothing written: the flow writes its set at the end


def test_untrusted_text_is_printable_on_a_terminal_and_in_a_markdown_cell():
    from hwnorm.io import printable
    assert printable("model|x\n\r\x00\x1b[31m\u202eevil\u2066", markdown=True) == \
        "model\\|x\\u000a\\u000d\\u0000\\u001b[31m\\u202eevil\\u2066"
    assert printable("MatMul_16 (µ, é, 漢)") == "MatMul_16 (µ, é, 漢)"  # ordinary text is untouched
    assert printable("a|b\n") == "a|b\\u000a"  # on a terminal a bar is just a bar


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_command_starts_is_one_line(signum):
    """Ctrl-C / SIGTERM at once, while the interpreter and hwnorm's modules load: one line, no
    traceback (or, before Python runs at all, the signal's default action)."""
    proc = subprocess.Popen([sys.executable, "-m", "hwnorm.entry", "flow", "--sim", "none", "--no-synth"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=terminal_signals)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "UnusedElaboratable" not in err, err
    assert proc.returncode in (-signum, 128 + signum, 130 if signum == signal.SIGINT else 143), err
