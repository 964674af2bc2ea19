"""``loadwise`` command line: the parsers (``parsers.py``), then the one command asked for.

Only the command that runs is imported (``<name>_cmd.py``, which imports the library and
torch), so ``loadwise --help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from loadwise._version import __version__
from loadwise.cli.parsers import COMMANDS
from loadwise.errors import LoadwiseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadwise",
        description="Keep PyTorch training fed: pack data once, open it in the right mode.",
    )
    parser.add_argument("--version", action="version", version=f"loadwise {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what loadwise does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add in COMMANDS.items():
        add(commands).set_defaults(run=name)  # not `command`: watch has an argument of that name
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a LoadwiseError (or an unreadable or unwritable file) becomes a
    one-line message and exit code 2 (``verify`` exits 1 for damaged shards)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        command = importlib.import_module(f"loadwise.cli.{args.run}_cmd")
        return int(command.run(args))
    except LoadwiseError as exc:
        print(f"loadwise {args.run}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the library did not name (unreadable, unwritable)
        where = f" `{exc.filename}`" if exc.filename else ""
        print(f"loadwise {args.run}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
