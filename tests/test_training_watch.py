"""Training you can watch (issue 17 item 3, issue 15 item 11): report lines when stderr is not a terminal, the
loss history in the run folder and its plot, interrupts (Ctrl-C, SIGTERM) that name the checkpoint and the
command to resume, stale temp files removed on start."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from avb_zoo.cli import main
from budget import budget
from click.testing import CliRunner
from PIL import Image

from avb_zoo.errors import CheckpointError, TrainingInterrupted
from avb_zoo.training.history import HISTORY_FILE, read_history
from avb_zoo.training.interrupt import sigterm_as_interrupt
from avb_zoo.training.trainer import train
from avb_zoo.util.fileio import remove_stale_temps

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_lines_when_not_a_terminal_and_history_rows(tmp_path):
    done = run_cli("train", "toy-avb", "--out", tmp_path / "run", "--max-steps", "6", "--log-every", "2")
    assert done.exit_code == 0, done.output
    lines = [line for line in done.stderr.splitlines() if line.startswith("toy-avb-v1 step")]
    assert [line.split()[2] for line in lines] == ["2/6", "4/6", "6/6"]
    assert re.search(r"primal \S+ adversary \S+ elbo_estimate \S+ \| [\d.]+ steps/s, eta \S+$", lines[0])
    rows = read_history(tmp_path / "run")
    assert [row["step"] for row in rows] == [2, 4, 6]
    assert set(rows[0]) == {"step", "seconds", "primal", "adversary", "elbo", "rec"}
    done = run_cli("train", "toy-avb", "--out", tmp_path / "quiet", "--max-steps", "4", "--log-every", "2", "--quiet")
    assert "step" not in done.stderr


def test_interrupt_names_the_checkpoint_and_resume_keeps_one_history(tmp_path):
    def stop_at_7(step, _result):
        if step == 7:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    settings = {"max_steps": 8, "checkpoint_every": 4, "report_every": 2, "progress": False}
    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 7; stopped at the checkpoint of step 4") as e:
        train("toy-avb", out, **settings, on_step=stop_at_7)
    assert e.value.checkpoint_step == 4
    assert [row["step"] for row in read_history(out)] == [2, 4, 6]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left
    assert train("toy-avb", out, **settings, resume=True).step == 8
    assert [row["step"] for row in read_history(out)] == [2, 4, 6, 8]  # 6 once: rows after 4 were dropped


def test_sigterm_stops_the_command_like_ctrl_c_and_the_printed_command_resumes(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "toy-avb", "--out", str(out), "--seed", "3", "--checkpoint-every", "5", "--log-every", "5"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "avb_zoo.cli", *argv], stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    deadline = time.monotonic() + 120
    while not read_history(out, missing_ok=True) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=budget(60))
    assert proc.returncode == 130, stderr
    match = re.search(r"stopped at the checkpoint of step (\d+) in ", stderr)
    assert match, stderr
    command = stderr.strip().splitlines()[-1]
    assert command.startswith("resume with: avb-zoo train toy-avb --out ") and command.endswith(" --resume"), command
    words = shlex.split(command.removeprefix("resume with: "))
    assert words[2:] == [*argv[1:], "--resume"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no hidden temp file survives
    saved = int(match.group(1))
    done = run_cli(*words[1:], "--max-steps", saved + 2)
    assert done.exit_code == 0, done.output
    assert f"to step {saved + 2}" in done.output


def test_sigterm_as_interrupt_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends
    assert signal.getsignal(signal.SIGTERM) == before


def test_stale_temp_files_are_removed_on_start(tmp_path):
    out = tmp_path / "run"
    train("toy-avb", out, max_steps=1, progress=False)
    stale = out / ".training_state.safetensors.0123456789ab.tmp"
    stale.write_bytes(b"\0" * 4096)  # what a kill during a checkpoint write leaves
    keep = [out / ".hidden-but-mine", out / "notes.0123456789ab.tmp"]
    for path in keep:
        path.write_text("user file")
    outside = tmp_path / "outside.txt"
    outside.write_text("not in the run folder")
    (out / ".model.safetensors.abcdefabcdef.tmp").symlink_to(outside)
    train("toy-avb", out, max_steps=2, progress=False, resume=True)
    assert not stale.exists()
    assert all(p.exists() for p in keep) and outside.read_text() == "not in the run folder"
    assert remove_stale_temps(tmp_path / "missing") == []


def test_plot_draws_the_history(tmp_path):
    out = tmp_path / "run"
    train("toy-avb", out, max_steps=4, report_every=2, progress=False)
    done = run_cli("plot", out)
    assert done.exit_code == 0, done.output
    assert Image.open(out / "losses.png").format == "PNG"
    assert run_cli("plot", out, "--out", tmp_path / "l.pdf").exit_code == 0
    assert (tmp_path / "l.pdf").read_bytes().startswith(b"%PDF")
    for args, message in (
        ([out, "--out", tmp_path / "l.xyz"], "not a format matplotlib writes"),
        ([tmp_path], "holds no history.jsonl"),
    ):
        done = run_cli("plot", *args)
        assert done.exit_code == 1 and done.output.count("\n") == 1 and message in done.output, done.output
    assert not (tmp_path / "l.xyz").exists()


def test_history_reader_skips_only_a_cut_last_line(tmp_path):
    rows = [{"step": 2, "primal": 1.0}, {"step": 4, "primal": 0.5}]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / HISTORY_FILE).write_text(text + '{"step": 6, "pri')
    assert read_history(tmp_path) == rows
    (tmp_path / HISTORY_FILE).write_text('{"step": 6, "pri\n' + text)
    with pytest.raises(CheckpointError, match="line 1 is not JSON"):
        read_history(tmp_path)


def test_max_minutes_counts_every_sitting(tmp_path):
    """The limit is training time over every sitting: a resumed run that has already used it takes one step."""
    run = tmp_path / "run"
    common = ["train", "toy-avb", "--out", run, "--max-minutes", "0.001", "--log-every", "1", "--quiet"]
    done = run_cli(*common)
    assert done.exit_code == 0, done.output
    first = json.loads((run / "training.json").read_text())
    assert first["seconds"] >= 0.06 - 0.05  # 0.001 min = 0.06 s, recorded to 0.1 s
    steps = first["steps"]
    row = read_history(run)[-1]
    assert row["step"] == steps and row["seconds"] >= 0.06
    done = run_cli(*common, "--resume")
    assert done.exit_code == 0, done.output
    second = json.loads((run / "training.json").read_text())
    assert second["steps"] == steps + 1  # the earlier sitting had spent the limit already
    assert abs(second["seconds"] - (row["seconds"] + second["seconds_this_sitting"])) <= 0.11
    rows = read_history(run)
    assert [r["step"] for r in rows][-2:] == [steps, steps + 1] and rows[-1]["seconds"] > row["seconds"]


@pytest.mark.parametrize("extra", [["--seeds", "0-1"], ["--nproc", "2"]])
def test_max_minutes_is_refused_where_it_cannot_hold(tmp_path, extra):
    done = run_cli("train", "toy-avb", "--out", tmp_path / "run", "--max-minutes", "1", *extra)
    assert done.exit_code == 1, done.output
    assert done.output.startswith("error: ") and "--max-minutes" in done.output
    assert not (tmp_path / "run").exists()
