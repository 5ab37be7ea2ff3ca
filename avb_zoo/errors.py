"""Typed errors. Each names the problem in words a user can act on; the command prints the message alone."""

from __future__ import annotations


class AVBZooError(Exception):
    """Base of every error the project raises on purpose (the command prints these without a traceback)."""


class DataError(AVBZooError):
    """Data that is missing, malformed, or fails a checksum."""


class IDXFormatError(DataError):
    """An IDX file with a wrong magic number, wrong sizes, or truncated contents."""


class ChecksumError(DataError):
    """A file whose hash differs from the expected one."""


class ConfigError(AVBZooError):
    """A model or recipe configuration that is invalid (unknown architecture, wrong types, sizes out of range)."""


class RecipeNotFound(AVBZooError):
    """An id that names no recipe in the catalogue."""


class CheckpointError(AVBZooError):
    """A run directory or checkpoint that is missing, corrupt, or does not match the run."""


class TrainingDiverged(AVBZooError):
    """A loss or parameter became NaN or infinite; the last good checkpoint is kept."""


class OutputError(AVBZooError):
    """An output location that cannot be written."""


class InputError(DataError):
    """Arrays or images given to a model that have the wrong shape, dtype or range, or hold NaN."""


class GraphError(AVBZooError):
    """An ONNX graph that is missing, is not ONNX, or does not match the model's config.json."""


class ExportError(AVBZooError):
    """An ONNX export that failed or whose graphs do not reproduce the PyTorch modules."""


class ProviderError(AVBZooError):
    """An onnxruntime execution provider that is unknown, unavailable, or was silently replaced."""


class EvaluationError(AVBZooError):
    """Evaluation settings out of range, or an evaluation whose result cannot be trusted (non-finite values)."""
