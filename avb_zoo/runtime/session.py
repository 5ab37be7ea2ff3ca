"""onnxruntime sessions over a model folder's graphs: explicit providers, checked against config.json.

A graph is opened only when its bytes are those its export verified (``onnx/verification.json``) and hold no
random op (``runtime.graph_checks``); it is trusted only after its metadata and its input and output shapes
agree with the folder's config.json (architecture fingerprint, sizes, graph role). Providers are chosen
explicitly (CUDA when the installed onnxruntime has it, then CPU) and checked after creation, because
onnxruntime silently falls back to the CPU when a provider fails to start.

On the CPU a batch is split into row blocks run at once, one onnxruntime thread each, rather than run whole
on onnxruntime's intra-op pool: every row of these graphs is computed independently, and layout operations
such as ``DepthToSpace`` and the element-wise activations run on one thread inside the pool. Measured on a
2-core CPU (mnist-avb-ac graphs, batch 256): 10.7 ms (encoder) and 8.7 ms (sampler) split in two, against
12.4 ms and 11.5 ms on a 2-thread intra-op pool; the outputs are identical.

The number of blocks (threads) is the caller's ``threads``, else :func:`avb_zoo.util.threads.choose_threads`'s:
a thread variable such as OMP_NUM_THREADS when set, else the physical cores other programs leave idle, measured
from the runtime's import to a session's first call (``avb_zoo.runtime.load.LOAD``: the imports and the graphs'
loading fill most of the window), then kept for RECHECK_SECONDS, so the graphs of one model share one measurement.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from avb_zoo.errors import GraphError, InputError, ProviderError, shown
from avb_zoo.modelfile.layout import GRAPHS, META_PREFIX, architecture_fingerprint, graph_file
from avb_zoo.runtime.graph_checks import verified_graph
from avb_zoo.runtime.limits import MAX_DIM
from avb_zoo.runtime.load import LOAD
from avb_zoo.runtime.ort import ort
from avb_zoo.util.threads import RECHECK_SECONDS, ThreadChoice, choose_threads, env_threads

PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
MIN_ROWS_PER_THREAD = 8  # below this a block's fixed cost per call outweighs a second thread


_CHOSEN: list[tuple[float, ThreadChoice]] = []  # the last automatic choice and when it was made


def thread_choice() -> ThreadChoice:
    """The threads of a session opened without ``threads`` (see the module notes), with where they came from."""
    if env_threads() is None and _CHOSEN and time.monotonic() - _CHOSEN[-1][0] < RECHECK_SECONDS:
        return _CHOSEN[-1][1]
    choice = choose_threads(load=LOAD)
    if choice.automatic:
        _CHOSEN[:] = [(time.monotonic(), choice)]
    return choice


def default_threads() -> int:
    """The thread count of :func:`thread_choice`."""
    return thread_choice().threads


def row_blocks(rows: int, threads: int) -> list[slice]:
    """At most ``threads`` contiguous, nearly equal blocks of ``rows``, each of at least MIN_ROWS_PER_THREAD rows."""
    count = max(1, min(threads, rows // MIN_ROWS_PER_THREAD))
    bounds = [rows * i // count for i in range(count + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def choose_providers(providers: str | Sequence[str] | None = None) -> tuple[list[str], bool]:
    """(providers in order of precedence, whether the caller asked for them explicitly).

    ``None`` or ``"auto"``: CUDA when this onnxruntime build has it, then CPU. Otherwise names such as
    ``"cpu"``, ``"cuda"`` or onnxruntime's own ``"CUDAExecutionProvider"``, each of which must be available.
    """
    available = ort.get_available_providers()
    if providers is None or providers == "auto":
        chosen = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        return chosen, False
    names = [providers] if isinstance(providers, str) else list(providers)
    chosen = [PROVIDER_ALIASES.get(name.lower(), name) for name in names]
    missing = [p for p in chosen if p not in available]
    if missing or not chosen:
        raise ProviderError(f"onnxruntime provider(s) {missing or names} not available here; it has {available}")
    return chosen, True


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Full graph optimisation; no thread spinning between calls (two sessions, or other work, share the CPU).

    ``threads`` sets onnxruntime's intra-op pool (default: onnxruntime's, one thread per physical core).
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's concern
    return options


def _dims(arg: Any) -> list[int | None]:
    """Fixed sizes of an onnxruntime NodeArg's shape, None for the dynamic (named) ones."""
    return [d if isinstance(d, int) else None for d in arg.shape]


class GraphSession:
    """One graph of a model folder (``encoder``, ``moments``, ``decoder`` or ``sampler``) on onnxruntime.

    ``threads``: CPU threads for one call (default: chosen at the first call, see the module notes). On the CPU
    provider a batch runs as up to that many row blocks at once, each on one onnxruntime thread.
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        config: Mapping[str, Any],
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
        hashes: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.path = folder / graph_file(name)
        source = verified_graph(folder, name, hashes)  # the export's bytes, no random op; catalogued where listed
        requested, explicit = choose_providers(providers)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a positive integer, got {shown(threads)}")
        self._threads = threads
        # one onnxruntime thread per session when this wrapper splits batches itself (CPU); the session's own
        # threads otherwise (a CUDA session, also when it falls back to the CPU)
        on_cpu = requested[0] == "CPUExecutionProvider"
        self._split = on_cpu
        try:
            options = session_options(1 if on_cpu else self.threads)
            self.session = ort.InferenceSession(source, options, providers=requested)
        except Exception as err:  # onnxruntime raises its own exception types for unreadable or invalid graphs
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GraphError(f"{self.path} is not a usable ONNX graph: {first}") from None
        self.providers = self.session.get_providers()
        if self.providers[0] != requested[0]:
            message = f"onnxruntime could not start {requested[0]} for {self.path}; it runs on {self.providers[0]}"
            if explicit:
                raise ProviderError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.noise_dim = self._check(config)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def threads(self) -> int:
        """CPU threads for one call: the ``threads`` given, else chosen when first asked (see the module notes)."""
        if self._threads is None:
            self._threads = default_threads()
        return self._threads

    def _check(self, config: Mapping[str, Any]) -> int:
        """Metadata, input and output names and fixed sizes must all match config.json; returns noise_dim."""
        meta = self.metadata
        where = str(self.path)
        role = meta.get(META_PREFIX + "graph")
        if role != self.name:
            raise GraphError(f"{where} is not an avb-zoo {self.name} graph (its metadata names {shown(role)})")
        if meta.get(META_PREFIX + "architecture_sha256") != architecture_fingerprint(config):
            raise GraphError(f"{where} was exported from another architecture than the folder's config.json")
        try:
            noise_dim = int(meta.get(META_PREFIX + "noise_dim", ""))
        except ValueError:
            raise GraphError(f"{where} does not record its noise size (metadata avb_zoo.noise_dim)") from None
        if not 0 <= noise_dim <= MAX_DIM:
            raise GraphError(f"{where} records noise size {noise_dim:,}; the runtime allows 0 to {MAX_DIM:,}")
        x_dim, latent_dim = config["x_dim"], config["latent_dim"]
        sizes = {"x": x_dim, "eps": noise_dim, "z": latent_dim, "mean": latent_dim, "var": latent_dim}
        sizes.update(logits=x_dim, probs=x_dim)
        inputs, outputs = GRAPHS[self.name]
        for kind, expected, actual in (
            ("inputs", inputs, self.session.get_inputs()),
            ("outputs", outputs, self.session.get_outputs()),
        ):
            names = tuple(a.name for a in actual)
            if names != expected:
                raise GraphError(f"{where} has {kind} {list(names)}; an avb-zoo {self.name} graph has {list(expected)}")
            for arg in actual:
                dims = _dims(arg)
                want = [None, sizes[arg.name]]
                if arg.type != "tensor(float)" or dims != want:
                    raise GraphError(
                        f"{where}: {arg.name} is {arg.type} {dims}; config.json implies tensor(float) {want}"
                    )
        return noise_dim

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        """The graph's outputs for ``feeds`` (arrays sharing their first, batch, dimension)."""
        feeds = dict(feeds)
        rows = len(next(iter(feeds.values())))
        blocks = row_blocks(rows, self.threads) if self._split and rows >= 2 * MIN_ROWS_PER_THREAD else [slice(0, rows)]
        if len(blocks) == 1:
            return self.session.run(None, feeds)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix=f"avb-zoo-{self.name}")
        parts = [{name: value[block] for name, value in feeds.items()} for block in blocks]
        pending = [self._pool.submit(self.session.run, None, part) for part in parts[1:]]
        first = self.session.run(None, parts[0])  # the calling thread runs one block itself
        results = [first] + [job.result() for job in pending]
        return [np.concatenate([r[i] for r in results]) for i in range(len(first))]
