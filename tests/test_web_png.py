"""The page's PNG decoder (avb_zoo/web/static/png.js, run by node) against ``load_images``, value for value.

Every colour type, bit depth, interlacing and transparency chunk, for grey and RGB models: the page's input
must be the float32 array ``avb-zoo encode`` reads. A header declaring a huge image is refused before any
image data is read; damaged files raise the decoder's own error, never a crash.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from png_files import bomb, chunk, every_kind, header, png

from avb_zoo.runtime.inputs import load_images

PNG_JS = Path(__file__).resolve().parents[1] / "avb_zoo" / "web" / "static" / "png.js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: png.js is not run")

# reads [{file, c}] from stdin; prints [{x: base64 float32} | {error, kind}] in order
RUNNER = """
const fs = require("fs");
const png = require(process.argv[1]);
(async () => {
  const out = [];
  for (const t of JSON.parse(fs.readFileSync(0))) {
    try {
      const image = await png.decode(new Blob([fs.readFileSync(t.file)]), t.limit ? (h) => {
        if (h.width * h.height > t.limit) throw new Error(`refused ${h.width}x${h.height}`);
      } : undefined);
      out.push({ x: Buffer.from(png.modelInput(image, t.c).buffer).toString("base64") });
    } catch (err) {
      out.push({ error: err.message, kind: err.kind || null });
    }
  }
  console.log(JSON.stringify(out));
})();
"""


def decode_in_node(cases: list[dict]) -> list[dict]:
    done = subprocess.run(
        ["node", "-e", RUNNER, str(PNG_JS)], input=json.dumps(cases), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def floats(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype="<f4")


@pytest.mark.parametrize("shape", [(1, 5, 7), (3, 5, 7), (1, 28, 28)])
def test_every_kind_of_png_reads_as_load_images_reads_it(tmp_path, shape):
    c, h, w = shape
    cases, expected = [], []
    for name, data in every_kind(h, w, seed=h * w + c).items():
        (tmp_path / name).write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "made grey", "looks inverted": the values are what matters here
            expected.append(load_images(tmp_path / name, shape)[0])
        cases.append({"file": str(tmp_path / name), "c": c})
    results = decode_in_node(cases)
    assert len(results) == len(expected) == 52  # 13 type/depth pairs, interlaced or not, tRNS where allowed
    for case, result, want in zip(cases, results, expected, strict=True):
        assert "x" in result, f"{case['file']}: {result}"
        got = floats(result["x"])
        assert got.shape == want.shape and np.array_equal(got, want), f"{Path(case['file']).name} differs"


def test_sixteen_bit_grey_keeps_its_precision(tmp_path):
    """Values that are not multiples of 257: an 8-bit canvas would round them; the page must not."""
    levels = np.array([[1, 300], [32767, 65534]])
    (tmp_path / "g16.png").write_bytes(png(levels, 16, 0))
    (result,) = decode_in_node([{"file": str(tmp_path / "g16.png"), "c": 1}])
    got = floats(result["x"])
    np.testing.assert_array_equal(got, (levels.reshape(-1) / 65535).astype(np.float32))
    assert np.array_equal(got, load_images(tmp_path / "g16.png", (1, 2, 2))[0])


def test_a_huge_header_is_refused_before_its_data_is_read(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb(2000, 2000))
    (tmp_path / "header-only.png").write_bytes(header(30000, 30000))
    cases = [{"file": str(tmp_path / n), "c": 1, "limit": 1 << 26} for n in ("bomb.png", "header-only.png")]
    cases.append({"file": str(tmp_path / "bomb.png"), "c": 1, "limit": 1000})
    results = decode_in_node(cases)
    assert results[0].get("x") is not None and len(floats(results[0]["x"])) == 2000 * 2000  # within the limit
    assert results[1]["error"] == "refused 30000x30000"  # a header alone: refused, not "truncated"
    assert results[2]["error"] == "refused 2000x2000"


def _replace_idat(data: bytes, idat: bytes) -> bytes:
    start = data.index(b"IDAT") - 4
    end = start + 12 + int.from_bytes(data[start : start + 4], "big")
    return data[:start] + chunk(b"IDAT", idat) + data[end:]


@pytest.mark.parametrize(
    ("name", "damage", "kind", "words"),
    [
        ("text", lambda d: b"hello, not a png", "not-png", "no PNG signature"),
        ("no header", lambda d: d[:8] + chunk(b"IEND", b""), "unreadable", "no image header"),
        ("header checksum", lambda d: d[:29] + b"\0\0\0\0" + d[33:], "unreadable", "image header fails its checksum"),
        ("bad depth", lambda d: header(2, 2, depth=3), "unreadable", "bit depth 3 is not a PNG format"),
        ("truncated", lambda d: d[:-30], "unreadable", "truncated"),
        ("data checksum", lambda d: d[:-17] + b"\0" + d[-16:], "unreadable", "IDAT chunk fails its checksum"),
        ("not zlib", lambda d: _replace_idat(d, b"\x78\x9c garbage that is not deflate"), "unreadable", "zlib"),
        ("short data", lambda d: _replace_idat(d, zlib_of(b"\0\0")), "unreadable", "shorter than its header"),
        ("bad filter", lambda d: _replace_idat(d, zlib_of(b"\x09\0\0\0\0\0")), "unreadable", "filter type 9"),
        ("no palette", lambda d: png(np.zeros((2, 2)), 8, 3), "unreadable", "without a palette"),
    ],
)
def test_a_damaged_png_gets_a_reason(tmp_path, name, damage, kind, words):
    (tmp_path / "x.png").write_bytes(damage(png(np.array([[0, 255], [7, 9]]), 8, 0)))
    (result,) = decode_in_node([{"file": str(tmp_path / "x.png"), "c": 1}])
    assert result.get("kind") == kind and words in result["error"], result


def zlib_of(raw: bytes) -> bytes:
    import zlib

    return zlib.compress(raw)
