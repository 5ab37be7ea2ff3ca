"""The evaluation protocol as a record a reader can act on without this package, and its check on reading back.

:func:`binarization_key` states how an MNIST test image's bits follow from (seed, example index): the hash that
turns the key into a seed, the generator, how its outputs become uniforms and the comparison with the pixel,
exactly enough to rebuild the bits with hashlib and numpy (``tests/test_protocol.py`` does). :func:`ais_counts`
says what "steps" counts. :func:`check_protocol` reads a metrics.json's protocol back and names the first field
that is missing or contradicts another.

    python -m avb_zoo.evaluation.protocol models/mnist-vae-v1/metrics.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from avb_zoo.errors import EvaluationError, shown

KEY_SEPARATOR = "\x1f"  # avb_zoo.compute.rng.derive_seed joins the key's parts with it


def binarization_key(stream: str = "binarize") -> dict[str, Any]:
    """How test image ``index``'s bits follow from ``seed`` (avb_zoo.compute.rng.derive_seed and
    avb_zoo.data.mnist.binarize)."""
    return {
        "key_parts": ["int:{seed}", "int:{example_index}", f"str:{stream}"],
        "key_separator": KEY_SEPARATOR,
        "key_encoding": "utf-8",
        "hash": "blake2b",
        "digest_size": 8,
        "digest_to_int": "little-endian, then shifted right by 1 bit (a 63-bit seed)",
        "generator": "mt19937",
        "generator_seed": "the 63-bit seed mod 2**32 via the reference init_genrand (numpy: RandomState(s % 2**32))",
        "uniforms": "one 32-bit output per pixel in the file's pixel order: u = float32(output & (2**24 - 1)) * 2**-24",
        "uniform_bits": 24,
        "comparison": "bit = u <= float32(pixel) / float32(255), in float32",
        "comparison_operator": "<=",
        "pixels": "the uint8 pixels of the split's IDX file (t10k-images-idx3-ubyte), 784 per image",
    }


def ais_counts(steps: int) -> dict[str, Any]:
    """What ``steps`` counts: inverse temperatures, weight increments and HMC transitions."""
    return {
        "inverse_temperatures": steps + 1,
        "weight_increments": steps,
        "transitions": steps - 1,
        "counting": "steps = weight increments; beta_0 = 0 .. beta_steps = 1 are steps + 1 inverse temperatures, "
        "with one HMC transition after every increment but the last",
    }


REQUIRED = (
    "protocol.seed",
    "protocol.n_test",
    "protocol.device",
    "protocol.threads",
    "protocol.ais.steps",
    "protocol.ais.chains",
    "protocol.ais.leapfrog_steps",
    "protocol.ais.schedule",
    "protocol.ais.q0",
    "protocol.ais.inverse_temperatures",
    "protocol.ais.transitions",
    "protocol.ais.adapt_step_size",
    "protocol.ais.step_size_schedule",
    "protocol.data.name",
)
MNIST_REQUIRED = ("protocol.example_indices", "protocol.data.binarization_key")


def _get(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise EvaluationError(f"metrics.json: protocol field {path} is missing")
        node = node[part]
    return node


def _positive_int(record: dict[str, Any], path: str) -> int:
    value = _get(record, path)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EvaluationError(f"metrics.json: protocol field {path} must be a positive integer, got {shown(value)}")
    return value


def check_protocol(metrics: dict[str, Any]) -> dict[str, Any]:
    """The protocol of ``metrics`` after checking that every field a reader needs is there and agrees with the
    others; EvaluationError naming the first field that is missing or contradicts another."""
    if not isinstance(metrics, dict):
        raise EvaluationError("metrics.json: not a JSON object")
    for path in REQUIRED:
        _get(metrics, path)
    protocol = metrics["protocol"]
    steps = _positive_int(metrics, "protocol.ais.steps")
    for path in ("protocol.ais.chains", "protocol.ais.leapfrog_steps", "protocol.n_test", "protocol.threads"):
        _positive_int(metrics, path)
    counts = ais_counts(steps)
    for name in ("inverse_temperatures", "transitions"):
        if protocol["ais"][name] != counts[name]:
            raise EvaluationError(
                f"metrics.json: protocol field protocol.ais.{name} is {shown(protocol['ais'][name])}, but "
                f"protocol.ais.steps = {steps} means {counts[name]}"
            )
    if protocol["ais"]["adapt_step_size"]:
        pilot = _positive_int(metrics, "protocol.ais.pilot_steps")
        if pilot > steps:
            raise EvaluationError(
                f"metrics.json: protocol field protocol.ais.pilot_steps ({pilot}) exceeds protocol.ais.steps ({steps})"
            )
    examples = protocol["data"].get("examples")
    if examples is not None and examples != protocol["n_test"]:
        raise EvaluationError(
            f"metrics.json: protocol field protocol.data.examples ({shown(examples)}) differs from "
            f"protocol.n_test ({protocol['n_test']})"
        )
    if protocol["data"]["name"] == "mnist":
        for path in MNIST_REQUIRED:
            _get(metrics, path)
        indices = protocol["example_indices"]
        if not isinstance(indices, list) or not all(isinstance(i, int) and 0 <= i for i in indices):
            raise EvaluationError("metrics.json: protocol field protocol.example_indices must be a list of indices")
        if len(indices) != protocol["n_test"]:
            raise EvaluationError(
                f"metrics.json: protocol field protocol.example_indices has {len(indices)} entries, but "
                f"protocol.n_test is {protocol['n_test']}"
            )
        if len(set(indices)) != len(indices):
            raise EvaluationError("metrics.json: protocol field protocol.example_indices repeats an image")
        key = protocol["data"]["binarization_key"]
        expected = binarization_key()
        for name in ("key_parts", "hash", "digest_size", "generator", "uniform_bits", "comparison_operator"):
            if not isinstance(key, dict) or key.get(name) != expected[name]:
                raise EvaluationError(
                    f"metrics.json: protocol field protocol.data.binarization_key.{name} is "
                    f"{shown(key.get(name) if isinstance(key, dict) else None)}, not the {shown(expected[name])} "
                    "this version binarises with"
                )
    return protocol


def main(argv: list[str] | None = None) -> int:
    """Check the protocol of each metrics.json named; one line per file, exit 1 on the first bad one."""
    args = sys.argv[1:] if argv is None else argv
    for name in args:
        try:
            text = Path(name).read_text()
        except OSError as err:
            print(f"error: {name}: cannot read it ({err.strerror})", file=sys.stderr)
            return 1
        try:
            protocol = check_protocol(json.loads(text))
        except json.JSONDecodeError as err:
            print(f"error: {name}: not JSON (line {err.lineno})", file=sys.stderr)
            return 1
        except EvaluationError as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            return 1
        ais = protocol["ais"]
        print(
            f"{name}: {ais['steps']} weight increments ({ais['inverse_temperatures']} inverse temperatures, "
            f"{ais['transitions']} transitions) x {ais['chains']} chains, {protocol['n_test']} examples, "
            f"{protocol['threads']} thread(s) on {protocol['device']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
