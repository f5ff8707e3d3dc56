"""Errors a user can act on: the CLI prints their message, not a traceback."""

import errno


class LdmError(Exception):
    """A problem with the user's input, configuration or environment, explained in the message."""


def system_error(error: OSError, suffix: str = "") -> LdmError:
    """A failure of the system (disk full, permission denied, ...) as one line naming the file and the cause."""
    where = error.filename or "a file"
    cause = error.strerror or str(error)
    hint = "; free some space and run again" if error.errno == errno.ENOSPC else ""
    return LdmError(f"{where}: {cause}{hint}" + (f" {suffix}" if suffix else ""))
