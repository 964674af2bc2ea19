"""``loadwise`` command line: a parser per command, each handled by a small module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from loadwise._version import __version__
from loadwise.cli import bench_cmd, info_cmd, pack_cmd, tune_cmd, verify_cmd, watch_cmd
from loadwise.errors import LoadwiseError

COMMANDS = (pack_cmd, info_cmd, verify_cmd, watch_cmd, bench_cmd, tune_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadwise",
        description="Keep PyTorch training fed: pack data once, open it in the right mode.",
    )
    parser.add_argument("--version", action="version", version=f"loadwise {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what loadwise does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a LoadwiseError becomes a one-line message and exit code 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        return int(args.handler(args))
    except LoadwiseError as exc:
        print(f"loadwise {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
