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


class ModelNotFound(RecipeNotFound):
    """An id that names no registered model (the registry's lookups raise one of the three below)."""


class NamespaceNotFound(ModelNotFound):
    """An id whose namespace no registered model or installed plugin uses."""


class NameNotFound(ModelNotFound):
    """An id whose name is not registered in its namespace."""


class VersionNotFound(ModelNotFound):
    """An id whose name is registered, but not with the version asked for."""


class RegistrationError(AVBZooError):
    """A model registered with an invalid id, entry point or settings."""


class HubError(AVBZooError):
    """A Hub request that failed: bad repo id, missing repo, revision or file, refused token, no connection."""


class InvalidRepoId(HubError):
    """A repo id or revision that is not a safe Hub name (``..``, absolute paths, odd characters)."""


class HubNotFound(HubError):
    """A repo, revision or file that the Hub does not have (or hides from this token)."""


class HubRepoNotFound(HubNotFound):
    """The Hub answered that the model's repository does not exist (or is not visible with this token)."""


class HubAuthError(HubError):
    """The Hub refused the credentials, or a write needs a token and none was given."""


class HubUnreachable(HubError):
    """The Hub could not be reached (or offline mode forbids it) and no local copy can serve."""


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


class LaunchError(AVBZooError):
    """A multi-process run that could not start or did not finish: bad launch settings, a failed worker,
    a rendezvous that timed out."""


ECHO_LIMIT = 80  # characters of a user's input that an error message quotes
LINE_LIMIT = 2000  # characters of one error line as the command prints it


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)``, shortened past ``limit`` characters: an error quotes what was given, never all of it.

    The one helper for echoing input in messages, so a 100,000-character id or value prints as one short line.
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes | list | tuple | dict) else len(text)
    return f"{text[: max(limit - 3, 8)]}... ({size:,} characters in all)"


def one_line(message: str, limit: int = LINE_LIMIT) -> str:
    """``message`` as one printable line of at most ``limit`` characters (what the command shows for an error)."""
    text = " ".join(message.split())
    if len(text) > limit:
        text = f"{text[: limit - 40]}... ({len(text):,} characters in all)"
    return text


class WebError(AVBZooError):
    """The browser page cannot be built or served: onnxruntime-web not prepared (or not the pinned files), npm
    missing, a port that cannot be bound."""


class TrainingInterrupted(AVBZooError):
    """A run stopped by Ctrl-C or SIGTERM; its last checkpoint is kept and ``--resume`` continues it."""

    def __init__(self, message: str, *, checkpoint_step: int, out: str) -> None:
        super().__init__(message)
        self.checkpoint_step = checkpoint_step
        self.out = out


class InputWarning(UserWarning):
    """Input that was accepted after a conversion the user should know about (resized, made grey, inverted?)."""


class MissingDependency(AVBZooError):
    """An optional package a command needs is not installed (the message says what to install)."""
