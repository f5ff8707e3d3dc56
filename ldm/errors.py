"""Errors a user can act on: the CLI prints their message, not a traceback."""


class LdmError(Exception):
    """A problem with the user's input, configuration or environment, explained in the message."""
