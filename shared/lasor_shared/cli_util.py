"""Click helpers shared by the CLIs: every error is one line on stderr and a non-zero exit.

- `clean_errors` (decorator of a command's function): LasorError → `error: ...`, exit 2; --debug
  shows the traceback instead.
- `OneLineCommand` / `OneLineGroup` (click `cls=` of the entry-point commands): click's own usage
  errors (bad option values, missing arguments) become `error: ...` (exit 2) instead of a usage
  block, and Ctrl-C becomes `error: interrupted` (exit 130) instead of a traceback.
"""

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
            click.echo(f"error: {one_line(e)}", err=True)
            sys.exit(2)

    return wrapper


def one_line(e: LasorError) -> str:
    """The message of a LasorError, also when a DataLoader worker re-raised it with its traceback."""
    msg = str(e).strip()
    if "Traceback" in msg:
        msg = msg.splitlines()[-1].split("LasorError: ", 1)[-1]
    return msg


class _OneLineMain:
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt) as e:
            if isinstance(e.__cause__, EOFError):  # click turns an EOFError escaping a command into Abort
                click.echo("error: unexpected end of input", err=True)
                sys.exit(2)
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(0)


class OneLineCommand(_OneLineMain, click.Command):
    pass


class OneLineGroup(_OneLineMain, click.Group):
    pass
