"""The `ldm` command line: one subcommand per job, each with its own --help.

Each subcommand lives in the module that does the work; this file only wires them together.
A user mistake raises LdmError, which is printed as a one-line message with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from ldm import __version__
from ldm.errors import LdmError, system_error

Register = Callable[[argparse._SubParsersAction], None]


def _registrars() -> list[Register]:
    from ldm import demo, run_cli
    from ldm.dashboard import cli as dashboard_cli
    from ldm.export import cli as export_cli
    from ldm.feeds import cli as feeds_cli
    from ldm.linkage import bench as linkage_bench
    from ldm.load import bench as load_bench
    from ldm.load import cli as load_cli
    from ldm.pseudonymise import bench as pseudonymise_bench
    from ldm.pseudonymise import cli as pseudonymise_cli
    from ldm.pseudonymise import keys
    from ldm.release import cli as release_cli
    from ldm.store import cli as store_cli
    from ldm.synthetic import cli as synthetic_cli

    return [
        synthetic_cli.register,
        keys.register,
        feeds_cli.register,
        pseudonymise_cli.register,
        pseudonymise_bench.register,
        store_cli.register,
        load_cli.register,
        linkage_bench.register,
        load_bench.register,
        run_cli.register,
        export_cli.register,
        dashboard_cli.register,
        release_cli.register,
        demo.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldm",
        description="Linked, pseudonymised population health data model.",
    )
    parser.add_argument("--version", action="version", version=f"ldm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except LdmError as error:
        print(f"ldm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permission denied, ...: one line naming the file and the cause
        print(f"ldm {args.command}: error: {system_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ldm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        import duckdb

        if isinstance(error, duckdb.IOException):  # DuckDB's own file errors (a full disk while writing)
            print(f"ldm {args.command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
            return 2
        raise


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's or an operator's kill) unwinds like Ctrl-C, so cleanup and locks run."""
    raise KeyboardInterrupt


def entry() -> None:
    """The `ldm` console script: main(), then a prompt exit.

    DuckDB 2.0's bindings print dozens of "nanobind: leaked" lines while the interpreter tears down
    after some workloads; they say nothing about ldm's work. Output is flushed and logging shut down
    first, then the process exits without that teardown.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main()
    except SystemExit as stop:  # argparse's --help and usage errors
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry()
