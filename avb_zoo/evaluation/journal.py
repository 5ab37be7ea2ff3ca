"""A folder that keeps every finished batch of an evaluation, so a long AIS run resumes where it stopped.

The paper's protocol costs hours on a CPU; a run killed part-way (a closed laptop, a session that ends)
should lose one batch, not the night. Every example's randomness is keyed by (seed, example index), so a
batch's values do not depend on when or where it ran: a batch read back is the batch computed again.

``journal.json`` records what the values depend on (the weights' digest, the AIS settings, the seed, the
batch size, the ELBO and IW sample counts, the dtype and device type); a folder made for another evaluation
is refused with the differing fields named. The number of test examples is not part of it: a larger test
set starts with the smaller one's images (see :mod:`data`), so a 2,048-image run reuses a 1,024-image
run's batches. Each batch file is safetensors (never a pickle) and carries its example indices and the
sha256 of its input bits, both checked on reading.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from avb_zoo.compute.tensor_files import read_safetensors, save_safetensors
from avb_zoo.errors import AVBZooError, EvaluationError, shown
from avb_zoo.util.bounded import loads_json, read_regular
from avb_zoo.util.fileio import atomic_write_json, ensure_writable_dir

KEY_FILE = "journal.json"
MAX_KEY_BYTES = 1 << 16
FORMAT = 1


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the names and bytes of every tensor of ``model``'s state (adversary included)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def input_digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()


class Journal:
    """Finished batches of one evaluation in ``folder``: ``load`` one back or ``save`` one when done."""

    def __init__(self, folder: str | Path, key: dict[str, Any]) -> None:
        self.folder = ensure_writable_dir(folder)
        self.key = {"format": FORMAT, **key}
        path = self.folder / KEY_FILE
        if path.is_file():
            held = loads_json(read_regular(path, MAX_KEY_BYTES, EvaluationError, KEY_FILE), path, EvaluationError)
            canonical = json.loads(json.dumps(self.key))
            if held != canonical:
                differ = sorted(k for k in set(held) | set(canonical) if held.get(k) != canonical.get(k))
                raise EvaluationError(
                    f"{self.folder} keeps the batches of another evaluation (they differ in {', '.join(differ)}); "
                    "give another --resume-dir, or delete that folder to start again"
                )
        else:
            atomic_write_json(path, self.key)

    def _path(self, start: int) -> Path:
        return self.folder / f"batch-{start:07d}.safetensors"

    def load(
        self, start: int, indices: list[int], x: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float] | None:
        """(columns, diagnostics, AIS seconds) of the batch starting at ``start``, or None if not yet done."""
        path = self._path(start)
        if not path.is_file():
            return None
        try:
            tensors, meta = read_safetensors(path)
        except AVBZooError as err:
            raise EvaluationError(f"{path} is damaged ({err}); delete it and that batch is computed again") from None
        held = tensors.get("indices")
        if held is None or held.tolist() != list(indices) or meta.get("input_sha256") != input_digest(x):
            raise EvaluationError(
                f"{path} holds other examples than batch {start} of this test set; delete it to compute it again"
            )
        columns = {k.removeprefix("col."): v for k, v in tensors.items() if k.startswith("col.")}
        diagnostics = {k.removeprefix("diag."): v for k, v in tensors.items() if k.startswith("diag.")}
        try:
            seconds = float(meta.get("ais_seconds", "nan"))
        except ValueError:
            raise EvaluationError(f"{path}: ais_seconds {shown(meta.get('ais_seconds'))} is not a number") from None
        return columns, diagnostics, seconds

    def save(
        self,
        start: int,
        indices: list[int],
        x: torch.Tensor,
        columns: dict[str, torch.Tensor],
        diagnostics: dict[str, torch.Tensor],
        ais_seconds: float,
    ) -> None:
        """Keep a finished batch (written whole or not at all)."""
        tensors = {"indices": torch.tensor(list(indices), dtype=torch.int64)}
        tensors.update({f"col.{k}": v for k, v in columns.items()})
        tensors.update({f"diag.{k}": v for k, v in diagnostics.items()})
        meta = {"input_sha256": input_digest(x), "ais_seconds": repr(float(ais_seconds))}
        save_safetensors(self._path(start), tensors, meta)
