"""One exception family whose messages a user can act on.

Every error rtsep raises on purpose is an :class:`RtsepError`. Its message is a
single line that says what was expected, what was got, and what to do; the CLI
prints exactly that line and exits with :attr:`RtsepError.exit_code`.
"""

from __future__ import annotations


class RtsepError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(RtsepError, ValueError):
    """A parameter is out of range or of the wrong kind."""


class InputFormatError(RtsepError, ValueError):
    """An input stream or block has the wrong shape, type or channel count."""


class AudioFileError(RtsepError, OSError):
    """An audio file is missing, unreadable, empty or of an unsupported format."""

    exit_code = 3


class OutputPathError(RtsepError, OSError):
    """The output folder cannot be used: it is a file, lies under a file, or is not writable."""

    exit_code = 3


class BadAudioError(RtsepError):
    """The audio itself is unusable (all silent, NaN/Inf samples); outputs were still written."""

    exit_code = 4


class AudioDeviceError(RtsepError, OSError):
    """An audio device is missing, busy, vanished or refuses the requested format."""

    exit_code = 5


class DependencyError(RtsepError, ImportError):
    """An optional system library or Python package is needed for this command."""

    exit_code = 6
