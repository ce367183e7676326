"""The one exception type of lasor: raised for bad input, turned into a one-line CLI error."""


class LasorError(Exception):
    """A user-facing error: the message names the field/file and what was expected."""
