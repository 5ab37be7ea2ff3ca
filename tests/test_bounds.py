"""Hostile sizes and shapes fail in one line: bounded reads, no devices, no deep JSON."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from budget import budget

from avb_zoo.cards.card import read_metrics_file
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.data.idx import encode_idx, read_idx
from avb_zoo.errors import CheckpointError, ConfigError, IDXFormatError
from avb_zoo.modelfile.config_file import read_config_json

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 50_000 + "]" * 50_000


def test_a_gzip_bomb_is_read_no_further_than_its_header_implies(tmp_path: Path) -> None:
    import numpy as np

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(encode_idx(np.zeros(10, np.uint8)) + bytes(64 << 20), compresslevel=1))
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="trailing bytes.*needs 18 bytes, file has more than"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes allocated to refuse a 10-byte IDX file"


def test_devices_are_refused_in_a_capped_process(tmp_path: Path) -> None:
    """config.json and model.safetensors that link to /dev/zero: refused at once, not read until memory runs out."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").symlink_to("/dev/zero")
    (folder / "model.safetensors").symlink_to("/dev/zero")
    (tmp_path / "images.idx").symlink_to("/dev/zero")
    script = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from avb_zoo.modelfile.config_file import read_config_json
        from avb_zoo.data.idx import read_idx
        from avb_zoo.errors import AVBZooError
        from avb_zoo.compute.tensor_files import read_safetensors
        folder = sys.argv[1]
        for call in (lambda: read_config_json(folder), lambda: read_safetensors(folder + "/model.safetensors"),
                     lambda: read_idx(folder + "/../images.idx")):
            try:
                call()
            except AVBZooError as err:
                print(err)
        """
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)], env=env, capture_output=True, text=True, timeout=budget(120)
    )
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all("not a regular file" in line for line in lines), lines


def test_deeply_nested_json_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(DEEP)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_config_json(tmp_path)
    (tmp_path / "metrics.json").write_text(DEEP)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_metrics_file(tmp_path / "metrics.json")
    header = ('{"__metadata__": ' + DEEP + "}").encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        read_safetensors(tmp_path / "model.safetensors")
    assert json.loads("[[1]]") == [[1]]  # ordinary nesting is untouched
