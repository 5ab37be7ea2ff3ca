"""The runtime's portable random stream: known answers, order and chunking, its law, and the page's JS twin."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest

from avb_zoo.runtime.stream import (
    ENCODER_NOISE,
    PRIOR,
    NormalStream,
    UniformStream,
    normal,
    portable_log,
    words,
)

# float32 bit patterns of the first six draws of (seed, stream), recorded when the stream was defined; a change
# here changes every seeded grid, encoding and page of the zoo
KNOWN = {
    (0, 1): [0x3EDBE129, 0x3FCAFA98, 0x3EE9B47F, 0xBD5CDD92, 0xBEA75761, 0x3FC5549B],
    (-1, 2): [0x3E7B2C36, 0xBF9B044F, 0xBFBD631C, 0xBE4009EE, 0xBF07D89A, 0xBF03CDC5],
    (2**63 + 5, 3): [0x3F432C6C, 0x3F6DE59A, 0x3F4311AE, 0xBE9B77B9, 0x3F057E80, 0xBF94E685],
    (123456789, 4): [0x3E01AE4B, 0x3F9AF7EF, 0xBE3ACC85, 0xBD33FB09, 0xBF3B4025, 0x3F1443C1],
}
STREAM_JS = resources.files("avb_zoo.web") / "static" / "stream.js"


def test_words_are_splitmix64():
    """With key 0 the words are splitmix64's published output for state 0."""
    assert [int(w) for w in words(0, 0, 2)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


@pytest.mark.parametrize("key", sorted(KNOWN))
def test_known_answers(key):
    seed, stream = key
    assert normal(seed, stream, (6,)).view(np.uint32).tolist() == KNOWN[key]


def test_chunking_does_not_change_the_stream():
    whole = NormalStream(3, PRIOR).take(1001)
    stream = NormalStream(3, PRIOR)
    parts = np.concatenate([stream.take(k) for k in (1, 2, 997, 1)])
    np.testing.assert_array_equal(parts, whole)
    uniform = UniformStream(3, PRIOR)
    np.testing.assert_array_equal(np.concatenate([uniform.take(5), uniform.take(6)]), UniformStream(3, PRIOR).take(11))


def test_streams_and_seeds_differ():
    a = normal(0, PRIOR, (64,))
    assert np.abs(a - normal(0, ENCODER_NOISE, (64,))).min() > 0
    assert np.abs(a - normal(1, PRIOR, (64,))).max() > 0.5
    np.testing.assert_array_equal(normal(-1, PRIOR, (8,)), normal(2**64 - 1, PRIOR, (8,)))  # seeds wrap mod 2**64


def test_draws_are_standard_normal():
    """200,000 draws: mean, variance and a tail within about 5 standard errors of N(0, 1)'s."""
    x = normal(11, PRIOR, (200_000,)).astype(np.float64)
    assert abs(x.mean()) < 5 / np.sqrt(x.size)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / x.size)
    assert abs((np.abs(x) > 2).mean() - 0.0455) < 5 * np.sqrt(0.0455 / x.size)
    u = UniformStream(11, PRIOR).take(100_000)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)


def test_portable_log_is_the_log():
    s = np.concatenate([np.random.default_rng(0).random(10_000), [2.0**-104, 0.5, SQRT := 0.7071067811865476, 1.0]])
    s = s[s > 0]
    np.testing.assert_allclose(portable_log(s), np.log(s), rtol=4e-16, atol=4e-16)
    assert portable_log(np.array([SQRT]))[0] == pytest.approx(np.log(SQRT), abs=1e-16)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the page's stream.js is not run")
def test_the_page_draws_the_same_numbers(tmp_path):
    """stream.js (run by node) against this module, bit for bit: draws in chunks, and log on awkward values."""
    cases = [[0, 1, [6]], [-1, 2, [6]], [2**63 + 5, 3, [6]], [123456789, 4, [6]], [7, 1, [1, 5, 300, 2]]]
    logs = np.concatenate([np.random.default_rng(1).random(500), [2.0**-104, 0.25, 0.7071067811865476, 1 - 2**-53]])
    script = f"""
      const s = require({json.dumps(str(STREAM_JS))});
      const cases = {json.dumps([[str(c[0]), c[1], c[2]] for c in cases])};
      const draws = cases.map(([seed, stream, takes]) => {{
        const g = new s.NormalStream(BigInt(seed), stream);
        const out = [];
        for (const k of takes) out.push(...new Uint32Array(g.take(k).buffer));
        return out;
      }});
      const logs = {json.dumps(logs.tolist())}.map((v) => s.portableLog(v));
      console.log(JSON.stringify({{ draws, logs }}));
    """
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for (seed, stream, takes), js in zip(cases, got["draws"], strict=True):
        assert js == normal(seed, stream, (sum(takes),)).view(np.uint32).tolist(), (seed, stream)
    assert np.array(got["logs"]).tobytes() == portable_log(logs).tobytes()


def test_the_runtime_draws_from_this_stream():
    """Sampler.prior is the prior stream row-major (so the first rows do not depend on n), binarize its own."""
    from web_fixtures import TOY

    from avb_zoo.runtime import Sampler

    sampler = Sampler(TOY, providers="cpu")
    np.testing.assert_array_equal(sampler.prior(64, seed=5), normal(5, PRIOR, (64, 2)))
    np.testing.assert_array_equal(sampler.prior(3, seed=5), sampler.prior(64, seed=5)[:3])
    probs = np.full((1000, 4), 0.3, dtype=np.float32)
    drawn = sampler.binarize(probs, seed=5)
    np.testing.assert_array_equal(drawn, sampler.binarize(probs, seed=5))
    assert set(np.unique(drawn)) == {0.0, 1.0} and abs(drawn.mean() - 0.3) < 0.03
