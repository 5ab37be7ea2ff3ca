"""The README's table of shipped models, generated from each models/<id>/ folder (never typed by hand).

    python tools/models_table.py            # print the table
    python tools/models_table.py --write    # put it into README.md between the models-table markers
    python tools/models_table.py --check    # exit 1 if README.md's table is not the generated one (a test runs this)

Every number comes from a shipped file: metrics.json (written by ``avb-zoo eval``), training.json (written by
``avb-zoo train``) and the safetensors headers (parameter counts). The paper's rows are printed beside the
MNIST models, with the difference in scale stated under the table. Needs neither torch nor the package.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- models-table: begin (tools/models_table.py --write) -->", "<!-- models-table: end -->"
# The AVB paper's MNIST rows (Table 3, 32-dim latent, AIS on 2,048 test images) and the authors' code's README.
# (row, AIS log p(x), how it was evaluated as far as it is known)
REFERENCE_ROWS = (
    (
        "AVB + AC, 32-dim, the paper (Mescheder et al. 2017)",
        "-80.2 ± 0.4",
        "AIS; the text: 1000 x 5 on 2048 test images",
    ),
    ("VAE, 32-dim, the paper", "-81.9 ± 0.4", "AIS, as above"),
    ("AVB + AC, the authors' code README (conv1, 32-dim)", "-81.8", "AIS; settings not stated there"),
)


def parameter_count(path: Path) -> int:
    """Number of values in a safetensors file, read from its header alone."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    return sum(math.prod(info["shape"]) for name, info in header.items() if name != "__metadata__")


def number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def row(folder: Path) -> str:
    metrics = json.loads((folder / "metrics.json").read_text())
    training_file = folder / "training.json"
    training = json.loads(training_file.read_text()) if training_file.is_file() else {}
    protocol = metrics["protocol"]
    model = metrics["model"]
    params = f"{parameter_count(folder / 'model.safetensors'):,}"
    if (folder / "adversary.safetensors").is_file():
        params += f" (+{parameter_count(folder / 'adversary.safetensors'):,} adversary)"
    trained = "not recorded (no training.json)"
    if training:
        trained = (
            f"{minutes(training.get('seconds'))}, {training.get('device', '?')}, {training.get('steps', 0):,} steps"
        )
    ais = protocol["ais"]
    mc, spread = metrics.get("log_likelihood_mc_se"), metrics.get("log_likelihood_spread_se")
    errors = ("" if mc is None else f"± {mc:.2g} MC") + ("" if spread is None else f", ± {spread:.2g} spread")
    data = protocol["data"].get("name", "?")
    evaluated = f"{protocol['n_test']} {data}, {ais['steps']} x {ais['chains']}"
    exact = metrics.get("exact_log_likelihood")
    exact_text = "" if exact is None else f" (exact {number(exact, 4)})"
    gap, gap_se = metrics.get("log_likelihood_bdmc_gap"), metrics.get("log_likelihood_bdmc_gap_spread_se")
    if gap is not None:  # the estimator's looseness at this budget, on pairs simulated from the model
        pairs = (metrics.get("bdmc") or {}).get("pairs", "?")
        spread_text = "" if gap_se is None else f"s.e. {gap_se:.2f} over "
        exact_text += f"; BDMC gap {gap:.2f} ({spread_text}{pairs} simulated pairs)"
    digits = 4 if data == "toy" else 2
    return (
        f"| `{model['id']}` | {model['method']} | {params} | {trained} | "
        f"{number(metrics['log_likelihood'], digits)} {errors}{exact_text} | {evaluated} | "
        f"{number(metrics.get('reconstruction_error'), digits)} |"
    )


def shipped_folders() -> list[Path]:
    folders = [p.parent for p in sorted((ROOT / "models").glob("*/metrics.json"))]
    order = {"mnist": 0, "eight-schools": 1, "toy": 2}

    def key(folder: Path) -> tuple[int, str]:
        config = json.loads((folder / "config.json").read_text())
        return order.get((config.get("data") or {}).get("name", ""), 3), folder.name

    return sorted(folders, key=key)


def table() -> str:
    lines = [
        "| id | method | parameters | trained (time, device, steps) | AIS log p(x) (nats) | evaluated on "
        "(examples, distributions x chains) | reconstruction error (nats) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [row(folder) for folder in shipped_folders()]
    lines += [f"| {name} | | | not stated | {value} | {how} | |" for name, value, how in REFERENCE_ROWS]
    return "\n".join(lines) + "\n"


def readme_with(text: str, generated: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{generated}{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's table is out of date")
    args = parser.parse_args()
    generated = table()
    if not (args.write or args.check):
        print(generated, end="")
        return
    text = README.read_text()
    wanted = readme_with(text, generated)
    if args.check:
        if wanted != text:
            print("README.md's models table is out of date: run python tools/models_table.py --write", file=sys.stderr)
            raise SystemExit(1)
        print("README.md's models table matches the shipped models")
        return
    README.write_text(wanted)
    print("README.md's models table rewritten")


if __name__ == "__main__":
    main()
