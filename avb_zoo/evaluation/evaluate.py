"""``avb-zoo eval``: every metric of a model on its test data, with the protocol that produced it.

The result is one JSON object written atomically to ``metrics.json`` beside the weights. Every metric is a
mean over test examples, ``<name>``, with ``<name>_spread_se``: the spread of its per-example values, std /
sqrt(n), the standard error of a mean over a random sample of examples. The AIS log-likelihood also has
``log_likelihood_mc_se``: the Monte Carlo standard error of the AIS estimate itself (from the spread of each
example's chain weights), the error that more steps or chains reduce. AVB's ELBO and KL are the adversary's
estimates, not bounds, and are named so (``elbo_estimate``, ``kl_estimate``); the VAE's are ``elbo`` (a
bound) and ``kl`` (analytic). Every example's randomness is keyed by (seed, example index), so the numbers do
not depend on the batch size or on how the examples are split between processes.

Under torchrun each process evaluates whole batches of the one-process batching, batch b on rank b % size,
and the per-example values are gathered back in batch order: every metric, standard error and AIS
diagnostic equals the one-process result (bitwise on the same machine). Only the timings in
``diagnostics`` (RUN_DEPENDENT) and ``protocol["processes"]`` differ; :func:`comparable` drops them.

Torch's intra-op threads are ``EvalSettings.threads`` when given, else chosen (a thread variable such as
OMP_NUM_THREADS, else the physical cores other programs leave idle, shared among this machine's processes, and
one thread for a decoder too small to split; see :mod:`avb_zoo.compute.threads`); an automatic count follows the
load as AIS runs. ``protocol.threads`` and ``protocol.threads_source`` record the count and where it came from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from avb_zoo.compute.distributed import World, gather_objects, join_world, world_device
from avb_zoo.compute.threads import ThreadChoice, check_threads, choose_threads, governed, mean_product_flops, tick
from avb_zoo.errors import AVBZooError, CheckpointError, EvaluationError, shown
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.bdmc import check_bdmc_model, check_bdmc_pairs, model_bdmc, summarise_bdmc
from avb_zoo.evaluation.data import TestSet, load_test_set
from avb_zoo.evaluation.journal import Journal, weights_digest
from avb_zoo.evaluation.metrics import (
    ais_log_likelihood,
    elbo_terms,
    importance_weighted_bound,
    q0_description,
)
from avb_zoo.evaluation.protocol import ais_counts
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood
from avb_zoo.evaluation.reliability import reliability_record
from avb_zoo.evaluation.timing import Estimate, estimate_evaluation
from avb_zoo.hub.client import Pulled
from avb_zoo.hub.resolve import resolve
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import CONFIG_FILE, WEIGHTS_FILE, read_config
from avb_zoo.util.fileio import atomic_write_json

METRICS_FILE = "metrics.json"
QUADRATURE_MAX_X_DIM = 64  # exact log p(x) on a latent grid only where the decoder is cheap (the toy)
AUTHORS_ELBO_DRAWS = 25_600  # 200 batches x 128 in the authors' test script
MAX_ELBO_SAMPLES = 1000
# What may differ between two evaluations of the same model with the same settings: the timings, and the
# processes and threads that shared the work.
RUN_DEPENDENT = {
    "diagnostics": ("ais_seconds", "ais_leapfrog_per_second", "seconds", "resumed_batches"),
    "protocol": ("processes", "threads", "threads_source", "threads_later"),
}
ELBO_KINDS = {
    "bound": "bound (analytic KL)",
    "estimate": "estimate, not a bound (the adversary's KL)",
    "none": "unavailable: the model has no adversary (loaded without adversary.safetensors)",
}
ESTIMATED = {"elbo": "elbo_estimate", "kl": "kl_estimate"}  # AVB's adversary-based figures, by their names


@dataclass(frozen=True)
class EvalSettings:
    """Everything an evaluation depends on besides the model (recorded in the protocol)."""

    ais: AISSettings = field(default_factory=AISSettings)
    n_test: int | None = None  # None: the data set's default (2048 MNIST images, the 4 toy points)
    batch_size: int = 128
    seed: int = 0
    iw_samples: int = 1000
    elbo_samples: int | None = None  # None: enough for the authors' 25,600 draws in all (at most 1000 each)
    device: str = "cpu"
    data_dir: str | None = None
    preset: str | None = None  # the named protocol these settings came from (recorded; see presets.py)
    bdmc: int | None = None  # simulated (x, z) pairs for the BDMC bracket (None: no bracket)
    threads: int | None = None  # torch's intra-op threads (None: chosen; see the module's docstring)

    def validate(self) -> EvalSettings:
        self.ais.validate()
        check_threads(self.threads)
        if self.bdmc is not None:
            check_bdmc_pairs(self.bdmc)
        for name in ("batch_size", "iw_samples", "elbo_samples"):
            value = getattr(self, name)
            if name == "elbo_samples" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EvaluationError(f"{name.replace('_', ' ')} must be a positive integer, got {shown(value)}")
        if self.n_test is not None and (not isinstance(self.n_test, int) or self.n_test < 1):
            raise EvaluationError(f"n_test must be a positive integer, got {shown(self.n_test)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise EvaluationError(f"seed must be an integer, got {shown(self.seed)}")
        return self


def default_elbo_samples(n_test: int) -> int:
    """Draws z ~ q(z|x) per example for ELBO and reconstruction error: 25,600 in all, as the authors used."""
    return max(1, min(MAX_ELBO_SAMPLES, math.ceil(AUTHORS_ELBO_DRAWS / n_test)))


def mean_and_se(values: torch.Tensor) -> tuple[float, float | None]:
    """Mean and its standard error std / sqrt(n) over examples (None for a single example)."""
    v = values.double()
    if v.numel() < 2:
        return float(v.mean()), None
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(v.numel()))


def monte_carlo_se_of_mean(per_example: torch.Tensor) -> float | None:
    """The AIS noise in the mean log p(x): sqrt(sum of per-example variances) / n (None for one chain)."""
    if not torch.isfinite(per_example).all():
        return None
    return float(per_example.double().square().sum().sqrt() / per_example.numel())


def resolve_model_folder(id_or_dir: str | Path | Pulled) -> tuple[Path, bool]:
    """(the model folder named by ID_OR_DIR, whether it is the user's own folder).

    A folder must hold config.json and model.safetensors. Anything else is taken as a zoo id and resolved
    by the one resolver (``avb_zoo.hub.resolve``: a matching local copy, else pulled); such a folder is not the
    user's, so metrics are not written into it. A ``Pulled`` (a name the caller has already resolved) is taken
    as it is.
    """
    pulled = id_or_dir if isinstance(id_or_dir, Pulled) else resolve(id_or_dir)
    folder, own = pulled.folder, pulled.source == "folder"
    for name, what in ((CONFIG_FILE, "configuration"), (WEIGHTS_FILE, "weights")):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} holds no {name}: it is not a model folder (its {what} are missing)")
    return folder, own


def _summarise(per_example: dict[str, torch.Tensor]) -> dict[str, float | None]:
    """``<name>`` (mean over examples) and ``<name>_spread_se`` (std over examples / sqrt(n)) per column."""
    out: dict[str, float | None] = {}
    for name, values in per_example.items():
        out[name], out[f"{name}_spread_se"] = mean_and_se(values)
    return out


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without its RUN_DEPENDENT fields: equal for any two runs of the same evaluation."""
    out = dict(result)
    for section, keys in RUN_DEPENDENT.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def in_batch_order(per_rank: list[list[Any]], count: int) -> list[Any]:
    """The ``count`` batches in one-process order, from each rank's own in the order it ran them: batch b was
    the (b // size)-th batch of rank b % size."""
    size = len(per_rank)
    return [per_rank[b % size][b // size] for b in range(count)]


def evaluate(
    model: AVBModel,
    settings: EvalSettings,
    *,
    has_adversary: bool | None = None,
    data: torch.Tensor | None = None,
    progress: bool = False,
    on_estimate: Callable[[Estimate], None] | None = None,
    resume_dir: str | Path | None = None,
) -> dict[str, Any]:
    """All metrics of ``model`` (moved to ``settings.device``) on its test data or on ``data`` [N, x_dim].

    ``on_estimate`` gets the predicted run time from a short timed pilot (:mod:`timing`) before the run
    starts (on rank 0); the pilot only times, its results are discarded.

    An AVB model without an adversary (``model.adversary`` None, or ``has_adversary=False``) gets no ELBO
    estimate: ``elbo_estimate`` is null and ``elbo_kind`` says why. Under torchrun every process calls
    this with the same arguments and gets the same result (see the module's docstring).

    With ``resume_dir`` every finished batch is kept there and batches already there are read back instead
    of run again (:mod:`journal`): an evaluation stopped part-way resumes, with the same result.
    """
    settings.validate()
    world = join_world(settings.device)
    device = world_device(torch.device(settings.device), world)
    if device.type == "cuda" and world.distributed:
        torch.cuda.set_device(device)  # NCCL's object gathers use the current device
    model = model.to(device).eval()
    method = model.method
    if has_adversary is None or method == "vae" or model.adversary is None:
        has_adversary = model.adversary is not None
    if settings.bdmc is not None:
        check_bdmc_model(model.config)
    test: TestSet = load_test_set(model.config, settings.n_test, settings.seed, settings.data_dir, data)
    elbo_samples = settings.elbo_samples or default_elbo_samples(test.x.shape[0])
    exact = model.latent_dim <= 2 and model.x_dim <= QUADRATURE_MAX_X_DIM
    journal = None
    if resume_dir is not None:
        journal = Journal(resume_dir, journal_key(model, settings, test, elbo_samples, has_adversary, device))
    choice = thread_choice(model, settings, test.x.shape[0], world.local_size)
    with governed(choice, world.local_size) as governor:
        if on_estimate is not None and world.is_main:
            on_estimate(pilot_estimate(model, settings, test, elbo_samples, exact))
        start = time.perf_counter()
        ais_seconds = 0.0
        n = test.x.shape[0]
        starts = range(0, n, settings.batch_size)
        mine: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (columns, diagnostics) per batch
        resumed = 0
        show = progress and world.is_main
        mine_starts = starts[world.rank :: world.size]
        bar = tqdm(mine_starts, desc="eval", unit="batch", disable=not show, dynamic_ncols=True)
        for lo in bar:
            tick()
            x = test.x[lo : lo + settings.batch_size].to(device)
            idx = test.indices[lo : lo + settings.batch_size]
            kept = journal.load(lo, idx, x) if journal is not None else None
            if kept is not None:
                mine.append(kept[:2])
                ais_seconds += kept[2]
                resumed += 1
                continue
            terms = elbo_terms(model, x, idx, settings.seed, elbo_samples)
            if method != "vae":
                if not has_adversary:
                    terms = {k: v for k, v in terms.items() if k == "reconstruction_error"}
                terms = {ESTIMATED.get(k, k): v for k, v in terms.items()}
            t0 = time.perf_counter()
            ais = ais_log_likelihood(model, x, idx, settings.ais, settings.seed)
            batch_ais_seconds = time.perf_counter() - t0
            ais_seconds += batch_ais_seconds
            terms["log_likelihood"] = ais.log_likelihood
            if method == "vae":
                terms["iw_bound"] = importance_weighted_bound(model, x, idx, settings.seed, settings.iw_samples)
            if exact:
                terms["exact_log_likelihood"] = quadrature_log_likelihood(model, x)
            diagnostics = {
                "acceptance": ais.acceptance,
                "step_size": ais.step_size,
                "ess": ais.effective_sample_size,
                "mc_se": ais.monte_carlo_se,
            }
            done = (
                {k: v.detach().double().cpu() for k, v in terms.items()},
                {k: v.cpu() for k, v in diagnostics.items()},
            )
            if journal is not None:
                journal.save(lo, idx, x, *done, batch_ais_seconds)
            mine.append(done)
        ranks = gather_objects((mine, ais_seconds, resumed), world)
        batches = in_batch_order([done for done, _, _ in ranks], len(starts))
        per_example = {k: torch.cat([columns[k] for columns, _ in batches]) for k in batches[0][0]}
        diagnostics = {k: torch.cat([diag[k] for _, diag in batches]) for k in batches[0][1]}
        ais_seconds = max(seconds for _, seconds, _ in ranks)  # the group waits for its slowest process
        for name, values in per_example.items():
            if not torch.isfinite(values).all():
                raise EvaluationError(
                    f"{name} is not finite for some test examples: the model's outputs are not finite"
                )
        elbo_key = "elbo" if method == "vae" else "elbo_estimate"
        result: dict[str, Any] = {elbo_key: None, f"{elbo_key}_spread_se": None}
        result.update(_summarise(per_example))
        result["log_likelihood_mc_se"] = monte_carlo_se_of_mean(diagnostics["mc_se"])
        ais_work = n * settings.ais.chains * settings.ais.leapfrog_steps * max(settings.ais.steps - 1, 1)
        ais_work *= 1.0 + settings.ais.pilot_cost  # the pilot's leapfrog steps are timed too
        result["elbo_kind"] = ELBO_KINDS["bound" if method == "vae" else ("estimate" if has_adversary else "none")]
        result["diagnostics"] = {
            "ais_mean_acceptance": float(diagnostics["acceptance"].mean()),
            "ais_final_step_size": float(diagnostics["step_size"].mean()),  # the frozen schedule's last eps
            "ais_mean_ess": float(diagnostics["ess"].mean()),
            "ais_seconds": round(ais_seconds, 3),
            "ais_leapfrog_per_second": round(ais_work / max(ais_seconds, 1e-9), 1),
            "seconds": round(time.perf_counter() - start, 3),
            "resumed_batches": sum(count for _, _, count in ranks),  # read back from resume_dir, not run now
        }
        if settings.bdmc is not None:
            result.update(bdmc_bracket(model, settings, world, show))
        result["model"] = {k: model.config.get(k) for k in ("id", "method", "latent_dim", "x_dim")}
        result["protocol"] = protocol(model, settings, test, exact, torch.device(settings.device), governor.record())
        result["protocol"]["elbo_samples"] = elbo_samples
        result["protocol"]["processes"] = world.size
        result["reliability"] = reliability_record(result, settings.ais.chains)
        return result


def thread_choice(model: AVBModel, settings: EvalSettings, examples: int, processes: int = 1) -> ThreadChoice:
    """Torch's threads for evaluating ``model``: ``settings.threads``, else chosen for the decoder's products
    at the AIS batch (a batch's examples times the chains), shared among ``processes`` on this machine."""
    rows = min(settings.batch_size, examples) * max(settings.ais.chains, settings.ais.pilot_chains)
    return choose_threads(settings.threads, mean_product_flops(model.decoder, rows), processes)


def bdmc_bracket(model: AVBModel, settings: EvalSettings, world: World, progress: bool = False) -> dict[str, Any]:
    """The BDMC fields of metrics.json (:mod:`bdmc`): ``settings.bdmc`` simulated pairs in batches of
    ``batch_size``, shared out between processes like the test batches (batch b on rank b % size)."""
    assert settings.bdmc is not None
    starts = range(0, settings.bdmc, settings.batch_size)
    mine = []
    for lo in tqdm(starts[world.rank :: world.size], desc="bdmc", unit="batch", disable=not progress):
        indices = list(range(lo, min(lo + settings.batch_size, settings.bdmc)))
        result = model_bdmc(model, settings.ais, indices, settings.seed)
        mine.append((result.lower, result.upper))
    batches = in_batch_order(gather_objects(mine, world), len(starts))
    lower = torch.cat([lo for lo, _ in batches])
    upper = torch.cat([up for _, up in batches])
    return summarise_bdmc(lower, upper, settings.ais, q0_description(model.method), settings.seed)


def journal_key(
    model: AVBModel, settings: EvalSettings, test: TestSet, elbo_samples: int, has_adversary: bool, device: torch.device
) -> dict[str, Any]:
    """What an evaluation's per-batch values depend on (the test-set size aside): the key of its journal."""
    return {
        "weights_sha256": weights_digest(model),
        "method": model.method,
        "has_adversary": bool(has_adversary),
        "ais": settings.ais.as_dict(),
        "seed": settings.seed,
        "batch_size": settings.batch_size,
        "elbo_samples": elbo_samples,
        "iw_samples": settings.iw_samples if model.method == "vae" else None,
        "data": test.description.get("name"),
        "dtype": str(next(model.parameters()).dtype),
        "device_type": device.type,
    }


def protocol(
    model: AVBModel,
    settings: EvalSettings,
    test: TestSet,
    exact: bool,
    device: torch.device,
    threads: dict[str, object] | None = None,
) -> dict:
    """Every setting behind the numbers, in words where a number would not say enough; ``threads`` is the
    ThreadGovernor's record (threads, threads_source, threads_later), else torch's thread count now."""
    import avb_zoo

    out: dict[str, Any] = {
        "ais": {
            **settings.ais.as_dict(),
            **ais_counts(settings.ais.steps),
            "q0": q0_description(model.method),
            "hmc": "unit mass, per-dimension leapfrog step eps * sigma0, Metropolis test per chain",
            "estimator": "log mean_k w_k over the chains (logsumexp - log K)",
            "prior": "N(0, I)",
        },
        "data": test.description,
        "n_test": test.x.shape[0],
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "device": str(device),
        **(threads or {"threads": torch.get_num_threads()}),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "randomness": "every draw keyed by (seed, example index, purpose)",
        "standard_error": {
            "<name>_spread_se": "std of the per-example values over test examples / sqrt(n_test)",
            "log_likelihood_mc_se": "Monte Carlo s.e. of the AIS mean: sqrt(sum of per-example AIS variances) / n",
        },
        "elbo": (
            "VAE: elbo = -reconstruction_error - KL, KL analytic (a bound); AVB: elbo_estimate = "
            "-reconstruction_error - kl_estimate, the adversary's KL estimate (not a bound)"
        ),
        "reconstruction_error": "-log p(x|z) for z ~ q(z|x), summed over pixels (nats), mean over elbo_samples draws",
        "software": {"avb_zoo": avb_zoo.__version__, "torch": torch.__version__.split("+")[0]},
    }
    if model.method == "vae":
        out["iw_samples"] = settings.iw_samples
    if exact:
        out["exact_log_likelihood"] = "quadrature: midpoint rule on a 401^d grid over [-7, 7]^d"
    if settings.preset is not None:
        out["preset"] = settings.preset
    if test.description.get("name") == "mnist":
        out["example_indices"] = list(test.indices)  # the test images, by their place in the t10k file
    return out


def pilot_estimate(model: AVBModel, settings: EvalSettings, test: TestSet, elbo_samples: int, exact: bool) -> Estimate:
    """The predicted wall time of evaluating ``test``, from a timed pilot on its first batch."""
    device = next(model.parameters()).device
    first = test.x[: settings.batch_size].to(device)
    return estimate_evaluation(
        model,
        first,
        test.indices[: settings.batch_size],
        examples=test.x.shape[0],
        ais=settings.ais,
        seed=settings.seed,
        elbo_samples=elbo_samples,
        iw_samples=settings.iw_samples if model.method == "vae" else None,
        quadrature=quadrature_log_likelihood if exact else None,
    )


def estimate_folder(id_or_dir: str | Path | Pulled, settings: EvalSettings) -> Estimate:
    """The predicted wall time of evaluating the model of ID_OR_DIR with ``settings`` (one process), without
    running the evaluation: what ``avb-zoo eval --estimate-only`` prints."""
    settings.validate()
    from avb_zoo.compute.device import resolve_device

    device = resolve_device(settings.device)
    folder, _ = resolve_model_folder(id_or_dir)
    model = load(folder, device=device).eval()
    test = load_test_set(model.config, settings.n_test, settings.seed, settings.data_dir)
    exact = model.latent_dim <= 2 and model.x_dim <= QUADRATURE_MAX_X_DIM
    with governed(thread_choice(model, settings, len(test.x))):
        return pilot_estimate(model, settings, test, settings.elbo_samples or default_elbo_samples(len(test.x)), exact)


def check_evaluation(id_or_dir: str | Path | Pulled, settings: EvalSettings) -> Path:
    """The model folder of ID_OR_DIR, after the checks that are cheap before starting any process: the
    settings, the device, the folder (or id), its configuration and its test data."""
    settings.validate()
    from avb_zoo.compute.device import resolve_device

    resolve_device(settings.device)
    folder, _ = resolve_model_folder(id_or_dir)
    config = read_config(folder)
    if settings.bdmc is not None:
        check_bdmc_model(config)
    load_test_set(config, settings.n_test, settings.seed, settings.data_dir)
    return folder


def evaluate_folder(
    id_or_dir: str | Path | Pulled,
    settings: EvalSettings,
    *,
    write: bool = True,
    progress: bool = False,
    on_estimate: Callable[[Estimate], None] | None = None,
    resume_dir: str | Path | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """Evaluate the model of ID_OR_DIR; for a model folder of the user's, write metrics.json beside its weights.

    Returns the metrics and the path written (None when nothing was: ``write=False``, or a zoo id whose
    folder lives in the Hub cache or the package). Under torchrun rank 0 alone writes the file, and every
    rank returns once it is written.
    """
    settings.validate()
    from avb_zoo.compute.device import resolve_device

    device = resolve_device(settings.device)
    world = join_world(device)
    folder, own = resolve_model_folder(id_or_dir)
    model = load(folder, device=world_device(device, world))
    result = evaluate(
        model, settings, progress=progress and world.is_main, on_estimate=on_estimate, resume_dir=resume_dir
    )
    if not (write and own):
        return result, None
    path = folder / METRICS_FILE
    _write_on_main(path, result, world)
    return result, path


def _write_on_main(path: Path, result: dict[str, Any], world: World) -> None:
    """Rank 0 writes ``path``; every rank returns once it is written, or raises rank 0's error."""
    failure: AVBZooError | None = None
    if world.is_main:
        try:
            atomic_write_json(path, result)
        except AVBZooError as err:
            failure = err
    failure = gather_objects(failure, world)[0]
    if failure is not None:
        raise failure


ROWS = (
    ("log_likelihood", "log p(x), AIS"),
    ("exact_log_likelihood", "log p(x), exact (quadrature)"),
    ("log_likelihood_bdmc_gap", "BDMC gap (simulated data)"),
    ("iw_bound", "importance-weighted bound"),
    ("elbo", "ELBO (bound)"),
    ("kl", "KL(q(z|x) || p(z)), analytic"),
    ("reconstruction_error", "reconstruction error"),
)
ESTIMATE_ROWS = (  # AVB: the adversary's estimates, shown apart from the bounds
    ("elbo_estimate", "ELBO estimate (adversary)"),
    ("kl_estimate", "KL estimate (adversary)"),
)


def format_table(result: dict[str, Any]) -> str:
    """The metrics as an aligned text table (mean, AIS Monte Carlo s.e., spread over examples as a s.e.), the
    adversary's estimates apart from the bounds, and the protocol in one line underneath."""

    def row(key: str, label: str) -> str:
        value, mc, spread = result[key], result.get(f"{key}_mc_se"), result.get(f"{key}_spread_se")
        shown = "n/a" if value is None else f"{value:.4f}"
        mc_text = "" if mc is None else f"{mc:.4f}"
        spread_text = "" if spread is None else f"{spread:.4f}"
        return f"{label:<32}{shown:>10}{mc_text:>10}{spread_text:>13}"

    lines = [f"{'metric':<32}{'mean':>10}{'MC s.e.':>10}{'spread s.e.':>13}"]
    lines += [row(key, label) for key, label in ROWS if key in result]
    estimates = [row(key, label) for key, label in ESTIMATE_ROWS if key in result]
    if estimates:
        lines.append("estimates, not bounds (the adversary's KL):")
        lines += estimates
        if result.get("elbo_estimate") is None and isinstance(result.get("elbo_kind"), str):
            lines.append(f"ELBO estimate {result['elbo_kind']}")
    p, d = result["protocol"], result["diagnostics"]
    ais = p["ais"]
    lines.append(
        f"AIS: {ais['steps']} steps ({ais['schedule']}) x {ais['chains']} chains x {ais['leapfrog_steps']} leapfrog, "
        f"acceptance {d['ais_mean_acceptance']:.2f}, ESS {d['ais_mean_ess']:.2f}/{ais['chains']}; "
        f"{p['n_test']} examples ({p['data'].get('name')}), seed {p['seed']}, {p['device']}, {d['seconds']:.1f} s"
    )
    lines.append("MC s.e.: the AIS estimate's own noise; spread s.e.: std over examples / sqrt(n)")
    if "log_likelihood_bdmc_gap" in result:
        lines.append("BDMC gap: reverse minus forward AIS on pairs simulated from the model, at the same protocol")
    return "\n".join(lines)
