"""Which combinations of training options make sense: one process or torchrun, one seed or stacked seeds.

Kept with the trainer rather than in the command, so that the API and the command refuse the same things with
the same sentence.
"""

from __future__ import annotations

from typing import Any

import torch

from avb_zoo.errors import ConfigError, one_line, shown


def check_train_options(
    *,
    seeds: bool,
    launched: bool,
    max_minutes: float | None,
    engine: str,
    noise: str | None,
    seed_given: bool,
) -> None:
    """Raise ConfigError naming the first combination that cannot run.

    ``seeds``: several seeds stacked in one process; ``launched``: several processes under torchrun;
    ``seed_given``: --seed was given explicitly.
    """
    if seeds:
        if max_minutes is not None:
            raise ConfigError("--max-minutes trains one seed; with --seeds use --max-steps")
        if engine != "eager" or noise == "device":
            raise ConfigError("--seeds trains the stacked step on the host noise stream; drop --engine and --noise")
        if launched:
            raise ConfigError(
                "--seeds trains its models in one process; it cannot be combined with --nproc or --nnodes"
            )
        if seed_given:
            raise ConfigError("give either --seed or --seeds, not both")
        return
    if launched:
        if max_minutes is not None:
            raise ConfigError(
                "--max-minutes runs in one process (each rank keeps its own clock); with --nproc use --max-steps"
            )
        if engine != "eager" or noise == "device":
            raise ConfigError(
                f"--engine {engine} with --noise {noise} runs in one process; with --nproc use --engine eager"
            )


def check_max_steps(max_steps: int | None) -> None:
    """A run of no steps would write an untrained model as if it were a result: refuse it, in the API and the CLI."""
    if max_steps is None:
        return
    if isinstance(max_steps, bool) or not isinstance(max_steps, int):
        raise ConfigError(f"--max-steps must be a whole number of steps, got {shown(max_steps)}")
    if max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {max_steps}: a run of no steps trains nothing")


def check_batch_fits(batch_size: int, examples: int | None, what: str) -> None:
    """A batch larger than the data set repeats examples within one step: refuse it rather than train on that."""
    if examples is not None and batch_size > examples:
        raise ConfigError(
            f"--batch-size {batch_size} is larger than {what} ({examples:,} examples): use --batch-size {examples} "
            "or less"
        )


def training_images(data: Any) -> torch.Tensor:
    """User training data as a tensor: uint8 0-255, bool, or floats (range checked later); anything else refused
    here in one line, before torch's own error for an object or string array."""
    import numpy as np

    if isinstance(data, torch.Tensor):
        dtype = data.dtype
        if dtype in (torch.uint8, torch.bool) or dtype.is_floating_point:
            return data.detach().cpu().float() if dtype == torch.bool else data.detach().cpu()
        raise ConfigError(f"training data has dtype {dtype}; expected uint8 0-255 or floats in [0, 1]")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"training data is not a rectangular array: {one_line(str(err))}") from None
    if array.dtype == np.uint8 or array.dtype.kind == "f":
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype == np.bool_:
        return torch.from_numpy(array.astype(np.float32))
    raise ConfigError(f"training data has dtype {array.dtype}; expected uint8 0-255 or floats in [0, 1]")
