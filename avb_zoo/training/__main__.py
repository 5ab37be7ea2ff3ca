"""``python -m avb_zoo.training ARGS``: the ``avb-zoo train`` command as a plain module, for torchrun's workers.

    torchrun --standalone --nproc-per-node 2 -m avb_zoo.training ...

takes the same arguments as ``avb-zoo train``. A plain entry point: the package's names stay what they are.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from avb_zoo.cli import main as cli

    cli(["train", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m avb_zoo.training")


if __name__ == "__main__":
    main()
