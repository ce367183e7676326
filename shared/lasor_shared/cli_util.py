"""Click helpers shared by the CLIs: LasorError → one-line message and exit code 2."""

from __future__ import annotations

import functools
import sys

import click

from lasor_shared.errors import LasorError


def clean_errors(fn):
    """Turn LasorError (and missing files) into `error: ...` on stderr, exit 2; --debug shows tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except LasorError as e:
            if debug:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper
