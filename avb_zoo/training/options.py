"""Which combinations of training options make sense: one process or torchrun, one seed or stacked seeds.

Kept with the trainer rather than in the command, so that the API and the command refuse the same things with
the same sentence.
"""

from __future__ import annotations

from avb_zoo.errors import ConfigError


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
