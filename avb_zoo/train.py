"""``python -m avb_zoo.train ID ...``: the ``avb-zoo train`` command as a module, for torchrun.

    torchrun --nproc-per-node 2 -m avb_zoo.train toy-avb --out runs/toy-avb

takes the same arguments as ``avb-zoo train``. ``avb_zoo.train`` is also the training function
(``avb_zoo.train("toy-avb", "runs/toy")``); importing this module by name keeps that call working.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def main(argv: list[str] | None = None) -> None:
    from avb_zoo.cli import main as cli

    cli(["train", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m avb_zoo.train")


class _CallableModule(types.ModuleType):
    """Once imported, ``avb_zoo.train`` names this module; calling it still trains (the package's function)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from avb_zoo.training.trainer import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    main()
