"""The `plumbline` command: one sub-command per operation, each registered by its module."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

# Each module exposes register(subparsers); a sub-command sets `func(args) -> int`.
COMMAND_MODULES = (
    "plumbline.runtime.commands",          # serve
    "plumbline.platform.commands_manifests",  # render, rbac
    "plumbline.platform.commands_cluster",    # deploy, restart, scale, status, rollback, logs, delete
    "plumbline.platform.commands_local",      # up, down, loadtest
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is unset or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plumbline",
        description="Serve plumber.R APIs concurrently and deploy them to Kubernetes.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plumbline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
