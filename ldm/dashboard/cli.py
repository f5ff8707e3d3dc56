"""`ldm dashboard`: the static board dashboard, built from the disclosure-controlled figures."""

from __future__ import annotations

import argparse
import sys

from ldm.export.cli import add_publication_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="build a static, offline dashboard site from the published (disclosure-controlled) marts",
        description=(
            "Publish the marts as `ldm export` does (same rules), then build from those figures only a static "
            "site for a Health and Wellbeing Board: overview with trends, inequalities by IMD, place tiers with "
            "maps and ranked charts, and one page per indicator. It opens from the file system with no network."
        ),
    )
    add_publication_arguments(parser, "the site")
    parser.set_defaults(handler=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    from ldm.dashboard.site import build  # altair and the Vega bundle load only when a site is built

    result = build(args.store, args.out, args.rules, progress=lambda m: print(f"  {m}", file=sys.stderr))
    print(
        f"{len(result.pages)} pages and {result.data_files} CSV files written to {result.folder} in "
        f"{result.seconds:.1f} s; open {result.folder / 'index.html'} in a browser"
    )
    return 0
