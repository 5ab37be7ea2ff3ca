"""How far one command travels: the avb_zoo modules whose functions run, how often the name the user typed is
parsed, how often config.json is read (and, apart, hashed for its sha256 check), and the cold wall time of
``sample ID`` against ``sample FOLDER``.

    python benchmarks/cli_paths.py                      # pull, sample and encode of mnist-avb-ac
    python benchmarks/cli_paths.py --repeat 5           # and the cold sample timings, best of 5
    python benchmarks/cli_paths.py --against OLD --repeat 5   # both tables for a checkout of another version
                                                        # (git worktree add OLD <rev>), timings interleaved

Each command runs in a fresh process (imports and caches cold), offline, with an empty Hugging Face cache, so
``pull`` serves the copy the package ships. A parse is a call of one of the functions that read text as a model id or
reference (PARSERS) with the user's name as its first argument, not nested inside another such call.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARSERS = ("parse_model_id", "resolve_name", "parse_reference", "parse_hub_ref", "parse")

PROBE = r"""
import json, sys
counts = {"modules": set(), "parses": 0, "config_reads": 0, "config_hashes": 0}
parsers = set(sys.argv[2].split(","))
user_name = json.loads(sys.argv[1])[1]
def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)) and str(args[0]).endswith("config.json"):
        frame, names = sys._getframe(1), set()
        while frame is not None:
            names.add(frame.f_code.co_name)
            frame = frame.f_back
        counts["config_hashes" if "sha256_file" in names else "config_reads"] += 1
sys.addaudithook(audit)
open_parses = set()
def profile(frame, event, arg):
    if event == "return":
        open_parses.discard(id(frame))
        return
    if event != "call":
        return
    name = frame.f_globals.get("__name__", "")
    if name.startswith("avb_zoo") and frame.f_code.co_name != "<module>":
        counts["modules"].add(name)
        code = frame.f_code
        names = code.co_varnames
        first = names[1] if names[:1] == ("cls",) else names[:1] and names[0]
        if code.co_name in parsers and first and frame.f_locals.get(first) == user_name:
            if not open_parses:  # a parse inside another parse of the same text is the same reading
                counts["parses"] += 1
            open_parses.add(id(frame))
from avb_zoo.cli import main
sys.setprofile(profile)
try:
    main(json.loads(sys.argv[1]), standalone_mode=False)
finally:
    sys.setprofile(None)
print("PROBE" + json.dumps({"modules": sorted(counts["modules"]), "parses": counts["parses"],
                            "config_reads": counts["config_reads"], "config_hashes": counts["config_hashes"]}))
"""


def environment(home: Path, tree: Path = ROOT) -> dict[str, str]:
    """Offline, an empty HF cache in ``home``, one thread, and the avb_zoo of the checkout ``tree``."""
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(tree))
    env.pop("HF_HUB_CACHE", None)
    return env


def probe(args: list[str], home: Path, work: Path, tree: Path = ROOT) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), ",".join(PARSERS)],
        cwd=work,
        env=environment(home, tree),
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE")), None)
    if line is None:
        raise SystemExit(f"{args} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(line[5:])


def cold_seconds(args: list[str], home: Path, work: Path, tree: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the command in a new process."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "avb_zoo.cli", *args],
        cwd=work,
        env=environment(home, tree),
        check=True,
        capture_output=True,
    )
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


ROWS = {
    "pull mnist-avb-ac": ["pull", "mnist-avb-ac"],
    "sample mnist-avb-ac": ["sample", "mnist-avb-ac", "-n", "4", "--seed", "0", "--out", "s.png"],
    "encode mnist-avb-ac": ["encode", "mnist-avb-ac", "digits.npy", "--seed", "0", "--out", "z.npy"],
}


def table(tree: Path, home: Path, work: Path, modules: bool) -> None:
    head = f"{'command':<24} {'modules entered':>15} {'name parses':>11} {'config.json reads':>17}"
    print(head + f" {'config.json hashed':>18}")
    for label, args in ROWS.items():
        found = probe(args, home, work, tree)
        row = f"{label:<24} {len(found['modules']):>15} {found['parses']:>11} {found['config_reads']:>17}"
        print(row + f" {found['config_hashes']:>18}")
        if modules:
            print("    " + " ".join(m.removeprefix("avb_zoo.") for m in found["modules"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=0, help="best-of-N cold timings of sample ID vs FOLDER")
    parser.add_argument("--modules", action="store_true", help="list the modules each command enters")
    parser.add_argument("--against", type=Path, default=None, help="a checkout of another version to compare")
    opts = parser.parse_args()
    trees = {"this checkout": ROOT}
    if opts.against is not None:
        trees = {f"against ({opts.against})": opts.against.resolve(), **trees}
    with tempfile.TemporaryDirectory() as tmp:
        home, work = Path(tmp) / "hf", Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "avb_zoo.cli", "data", "digits", "--bundled", "-n", "4", "--out", "digits.npy"],
            cwd=work,
            env=environment(home),
            check=True,
            capture_output=True,
        )
        for name, tree in trees.items():
            print(f"{name}:")
            table(tree, home, work, opts.modules)
        if not opts.repeat:
            return
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(opts.repeat):  # interleaved, so every version sees the same machine
            for name, tree in trees.items():
                for label, model in (("ID", "mnist-avb-ac"), ("FOLDER", str(tree / "models" / "mnist-avb-ac-v1"))):
                    args = ["sample", model, "-n", "64", "--seed", "0", "--out", "s.png"]
                    times.setdefault((name, label), []).append(cold_seconds(args, home, work, tree))
        print(
            f"\ncold `sample` in a new process (best of {opts.repeat}; OMP_NUM_THREADS=1; "
            f"load average {os.getloadavg()[0]:.1f})"
        )
        print(f"{'version':<40} {'by':<7} {'wall s':>7} {'CPU s':>7}")
        for (name, label), runs in times.items():
            print(f"{name:<40} {label:<7} {min(w for w, _ in runs):>7.3f} {min(c for _, c in runs):>7.3f}")


if __name__ == "__main__":
    main()
