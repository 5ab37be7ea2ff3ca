"""``python -m avb_zoo.eval ID_OR_DIR ...``: the ``avb-zoo eval`` command as a module, for torchrun.

    torchrun --nproc-per-node 2 -m avb_zoo.eval runs/toy-avb --ais-steps 1000

takes the same arguments as ``avb-zoo eval``; the test examples are shared out between the processes.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from avb_zoo.cli import main as cli

    cli(["eval", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m avb_zoo.eval")


if __name__ == "__main__":
    main()
