"""The model card (README.md) of a pushed model, generated from config.json, metrics.json and the files.

Nothing in it is typed by hand: architecture comes from config.json, numbers from metrics.json, hashes from
the files themselves, so the card cannot disagree with what it describes. The YAML metadata follows the Hub's
model-card conventions (library_name, tags, datasets, metrics, model-index).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from avb_zoo.errors import ConfigError
from avb_zoo.util.bounded import loads_json, read_regular

SAMPLE_GRID = "samples.png"  # the picture push generates and the card shows
MAX_METRICS_BYTES = 1 << 20  # a metrics file is a few hundred bytes
LIBRARY_NAME = "avb-zoo"
# The Hub dataset ids of the data sets recipes train on (toy and Eight Schools have none).
HUB_DATASETS = {"mnist": "ylecun/mnist"}
METHOD_TEXT = {
    "avb": "Adversarial Variational Bayes (Mescheder et al., 2017)",
    "avb-ac": "Adversarial Variational Bayes with Adaptive Contrast (Mescheder et al., 2017)",
    "vae": "a variational autoencoder with a Gaussian encoder (the paper's baseline)",
}
METHOD_TAGS = {
    "avb": ["adversarial-variational-bayes"],
    "avb-ac": ["adversarial-variational-bayes", "adaptive-contrast"],
    "vae": ["vae"],
}


def read_metrics_file(path: Path) -> dict[str, Any]:
    """metrics.json as a dict (``{}`` when absent); a file that is not a JSON object is an error."""
    if not path.is_file():
        return {}
    try:
        raw = read_regular(path, MAX_METRICS_BYTES, ConfigError, "metrics.json")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    data = loads_json(raw, path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _metric_table(metrics: dict[str, Any]) -> dict[str, Any]:
    nested = metrics.get("metrics")
    return nested if isinstance(nested, dict) else metrics


ERROR_KINDS = {"_mc_se": "Monte Carlo s.e.", "_spread_se": "spread s.e."}


def _is_error_key(name: str, table: dict[str, Any]) -> bool:
    return any(name.endswith(suffix) and name[: -len(suffix)] in table for suffix in ERROR_KINDS)


def metric_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics of metrics.json by name (top level, as ``avb-zoo eval`` writes, or under "metrics").

    ``<name>_mc_se`` (the AIS Monte Carlo standard error) and ``<name>_spread_se`` (the spread over examples,
    std / sqrt(n)) belong to ``<name>`` (see ``metric_errors``); they are not metrics of their own.
    """
    table = _metric_table(metrics)
    out: dict[str, float] = {}
    for name, value in table.items():
        if _is_error_key(str(name), table):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[str(name)] = float(value)
    return out


def metric_errors(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Standard errors by metric name and kind (``"_mc_se"``, ``"_spread_se"``), from the keys so named."""
    table = _metric_table(metrics)
    out: dict[str, dict[str, float]] = {}
    for name in metric_values(metrics):
        for suffix in ERROR_KINDS:
            value = table.get(f"{name}{suffix}")
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.setdefault(name, {})[suffix] = float(value)
    return out


def _ais_protocol(metrics: dict[str, Any]) -> dict[str, Any]:
    protocol = metrics.get("protocol")
    ais = protocol.get("ais") if isinstance(protocol, dict) else None
    if not isinstance(ais, dict):
        return {}
    keys = ("steps", "chains", "leapfrog_steps", "schedule", "q0")
    out = {k: ais[k] for k in keys if isinstance(ais.get(k), str | int | float)}
    if isinstance(protocol.get("n_test"), int):
        out["n_test"] = protocol["n_test"]
    return out


def metric_name(name: str, metrics: dict[str, Any]) -> str:
    """What a metric is, in words a reader of the card needs (an estimate is never called a bound)."""
    ais = _ais_protocol(metrics)
    if name == "log_likelihood":
        how = f", {ais['steps']} steps x {ais['chains']} chains" if {"steps", "chains"} <= set(ais) else ""
        return f"AIS log-likelihood (nats{how})"
    if name.endswith("_estimate"):
        return f"{name.removesuffix('_estimate').upper()} estimate from the adversary (an estimate, not a bound)"
    return {
        "exact_log_likelihood": "exact log-likelihood (quadrature)",
        "log_likelihood_bdmc_gap": "BDMC gap of the AIS log-likelihood (reverse minus forward AIS on simulated data)",
        "reconstruction_error": "reconstruction error (-log p(x|z), nats)",
        "elbo": "ELBO (a lower bound, analytic KL)",
        "iw_bound": "importance-weighted bound (a lower bound)",
        "kl": "KL(q(z|x) || p(z)) (analytic)",
    }.get(name, name)


def card_metadata(config: dict[str, Any], metrics: dict[str, Any], repo_id: str, has_onnx: bool) -> dict[str, Any]:
    """The YAML header: library_name, license, tags, datasets, metrics and model-index (one result per metric)."""
    method = str(config.get("method", ""))
    data = str((config.get("data") or {}).get("name", ""))
    tags = ["avb-zoo", *METHOD_TAGS.get(method, []), "variational-inference", "generative-model", "pytorch"]
    tags += ["safetensors"] + (["onnx"] if has_onnx else [])
    meta: dict[str, Any] = {"library_name": LIBRARY_NAME, "license": "mit", "tags": tags}
    if data in HUB_DATASETS:
        meta["datasets"] = [HUB_DATASETS[data]]
    values = metric_values(metrics)
    if values:
        meta["metrics"] = sorted(values)
    if values and data in HUB_DATASETS:  # model-index needs a dataset the Hub knows
        ais = _ais_protocol(metrics)
        results = []
        for key, value in sorted(values.items()):
            entry: dict[str, Any] = {"type": key, "name": metric_name(key, metrics), "value": value}
            if key == "log_likelihood" and ais:
                entry["config"], entry["args"] = "ais", ais
            results.append(entry)
        meta["model-index"] = [
            {
                "name": repo_id.split("/")[-1],
                "results": [
                    {
                        "task": {"type": "image-generation", "name": "density estimation"},
                        "dataset": {"type": HUB_DATASETS[data], "name": data, "split": "test"},
                        "metrics": results,
                    }
                ],
            }
        ]
    return meta


def catalogue_text(model_id: Any) -> tuple[str, str]:
    """(description, provenance) of the catalogue's recipe ``model_id`` (empty strings when there is none)."""
    if not isinstance(model_id, str):
        return "", ""
    try:
        from avb_zoo.catalogue.recipes import load_catalogue

        recipe = load_catalogue().get(model_id)
    except Exception:  # a broken catalogue must not stop a push; the card is then plainer
        return "", ""
    if recipe is None:
        return "", ""
    return recipe.description, str(recipe.extra.get("provenance", ""))


def _yaml(meta: dict[str, Any]) -> str:
    import yaml  # a dependency of huggingface_hub

    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False).strip()


def _component(part: Any) -> str:
    if not isinstance(part, dict):
        return "none"
    settings = ", ".join(f"{k}={v}" for k, v in part.items() if k != "name")
    return f"`{part.get('name')}`" + (f" ({settings})" if settings else "")


def render_model_card(
    config: dict[str, Any],
    metrics: dict[str, Any],
    repo_id: str,
    files: dict[str, str],
    description: str = "",
    provenance: str = "",
    training: dict[str, Any] | None = None,
) -> str:
    """README.md text for a model repo; ``files`` maps each pushed file to its sha256.

    ``description`` and ``provenance`` (how the recipe differs from the authors' code) default to the
    catalogue's entry for the config's id, when it has one.
    """
    if not (description or provenance):
        description, provenance = catalogue_text(config.get("id"))
    has_onnx = any(p.startswith("onnx/") for p in files)
    model_id = config.get("id")
    method = str(config.get("method", ""))
    lines = ["---", _yaml(card_metadata(config, metrics, repo_id, has_onnx)), "---", "", f"# {repo_id}", ""]
    lines += [description or f"A model trained with {METHOD_TEXT.get(method, method)}, published with avb-zoo.", ""]
    lines += ["## Model", "", "| setting | value |", "|---|---|"]
    rows = [
        ("avb-zoo id", f"`{model_id}`" if model_id else "-"),
        ("method", method),
        ("data", str((config.get("data") or {}).get("name", "-"))),
        ("x_dim", str(config.get("x_dim"))),
        ("latent_dim", str(config.get("latent_dim"))),
        ("encoder", _component(config.get("encoder"))),
        ("decoder", _component(config.get("decoder"))),
        ("adversary", _component(config.get("adversary"))),
        ("format_version", str(config.get("format_version"))),
    ]
    lines += [f"| {k} | {v} |" for k, v in rows] + [""]
    if provenance:
        lines += ["## Recipe provenance", "", provenance, ""]
    values, errors = metric_values(metrics), metric_errors(metrics)
    if values:

        def table(names: list[str]) -> list[str]:
            out = ["| metric | value | Monte Carlo s.e. | spread s.e. |", "|---|---|---|---|"]
            for name in names:
                err = errors.get(name, {})
                cells = [f"{err[k]:.2g}" if k in err else "-" for k in ERROR_KINDS]
                out.append(f"| {name} | {values[name]:.6g} | {' | '.join(cells)} |")
            return out

        estimates = sorted(n for n in values if n.endswith("_estimate"))
        lines += ["## Metrics", ""] + table(sorted(n for n in values if n not in estimates))
        lines += ["", "Monte Carlo s.e.: the noise of the AIS estimate itself; spread s.e.: the standard deviation"]
        lines += ["of the per-example values over the test examples / sqrt(n)."]
        if estimates:
            lines += ["", "The adversary's estimates (not bounds: an AVB ELBO estimate can exceed log p(x)):", ""]
            lines += table(estimates)
        if isinstance(metrics.get("elbo_kind"), str):
            lines += ["", f"ELBO: {metrics['elbo_kind']}."]
        protocol = metrics.get("protocol")
        if protocol:
            lines += ["", "<details><summary>Protocol</summary>", "", "```json", json.dumps(protocol, indent=2)]
            lines += ["```", "", "</details>"]
        lines += [""]
    if SAMPLE_GRID in files:
        lines += ["## Samples", "", f"![samples from the prior]({SAMPLE_GRID})", ""]
        lines += ["Pixel probabilities of 64 draws z ~ N(0, I), seed 0.", ""]
    lines += ["## Usage", ""]
    if has_onnx:  # the runtime needs the graphs: a repo without them is promised to torch alone
        lines += ["With onnxruntime alone (no torch):", "", "```python", "from avb_zoo.runtime import Sampler"]
        lines += ["", f'sampler = Sampler("hf-hub:{repo_id}")  # files checked against the Hub\'s sha256']
        lines += ["probs = sampler.sample(16, seed=0)  # [16, x_dim] pixel probabilities", "```", ""]
        lines += ["or with onnxruntime itself, from the files of this repo:", "", "```python"]
        lines += ["import numpy as np, onnxruntime as ort", "", 'session = ort.InferenceSession("onnx/sampler.onnx")']
        lines += [f"z = np.random.default_rng(0).standard_normal((16, {config.get('latent_dim')}), dtype=np.float32)"]
        lines += ['probs = session.run(None, {"z": z})[0]', "```", ""]
    lines += ["With torch:", "", "```python", "from avb_zoo import AVBModel", ""]
    lines += [f'model = AVBModel.from_pretrained("{repo_id}")  # eval mode, files sha256-checked']
    lines += ["probs = model.sample(16)  # pixel probabilities of 16 samples from the prior", "```", ""]
    if has_onnx:
        lines += ["From the command line:", "", "```bash", f"avb-zoo sample hf-hub:{repo_id} -n 64 --out samples.png"]
        lines += [f"avb-zoo verify hf-hub:{repo_id}  # the ONNX graphs against their test data", "```", ""]
    else:
        lines += [
            "This repo holds no ONNX graphs: it serves torch only, not onnxruntime (`avb-zoo export` adds them).",
            "",
        ]
    if training:
        lines += ["## Training", "", "```bash", str(training.get("command", "-")), "```", ""]
        seconds = training.get("seconds")
        took = f"{seconds:.0f} s" if isinstance(seconds, int | float) else "-"
        lines += [f"Device: {training.get('device', '-')} ({training.get('machine', '-')}); {took} for "]
        lines += [f"{training.get('steps', '-')} steps.", ""]
        how = [f"{training['precision']} matrix products"] if isinstance(training.get("precision"), str) else []
        if isinstance(training.get("threads"), int):
            how.append(f"{training['threads']} thread(s), {training.get('threads_source', '-')}")
        if how:
            lines += ["Arithmetic: " + "; ".join(how) + ".", ""]
    lines += ["## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{p}` | `{h}` |" for p, h in sorted(files.items())] + [""]
    return "\n".join(lines)
