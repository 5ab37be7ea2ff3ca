"""``python -m avb_zoo.evaluation ARGS``: the ``avb-zoo eval`` command as a plain module, for torchrun's workers.

    torchrun --standalone --nproc-per-node 2 -m avb_zoo.evaluation ...

takes the same arguments as ``avb-zoo eval``. A plain entry point: the package's names stay what they are.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from avb_zoo.cli import main as cli

    cli(["eval", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m avb_zoo.evaluation")


if __name__ == "__main__":
    main()
