"""The `plumbline` command: one sub-command per operation, each in a module loaded only when
that command runs (so `plumbline serve` in a pod never imports the Kubernetes client).

Conventions every command follows:
- an option `--some-flag` may also be set by the environment variable `PLUMBLINE_SOME_FLAG`
  (the flag wins); `--help` shows both and the default;
- errors end as `plumbline COMMAND: MESSAGE` on stderr with an exit code of ExitCode
  (plumbline/exits.py, documented in docs/configuration.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from . import __version__
from .exits import CommandError, ExitCode

ENV_PREFIX = "PLUMBLINE_"


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # has configure(name, parser): adds the options and sets func(args) -> int
    help: str
    env_defaults: bool = True  # False: the command reads PLUMBLINE_* itself (serve)


_RUNTIME, _MANIFESTS = "plumbline.runtime.commands", "plumbline.platform.cli.manifests"
_APPS, _LOCAL = "plumbline.platform.cli.apps", "plumbline.platform.cli.local"
COMMANDS = (
    Command(
        "serve",
        _RUNTIME,
        "serve a plumber.R over HTTP with a pool of R workers",
        env_defaults=False,
    ),
    Command(
        "prepare",
        "plumbline.runtime.prepare",
        "make an app folder ready to serve: fetch its bundle, install its R packages",
    ),
    Command("up", _LOCAL, "run the app locally: replicas behind HAProxy, in the foreground"),
    Command("down", _LOCAL, "stop a local cluster started by `plumbline up`"),
    Command("loadtest", _LOCAL, "run a Locust failover scenario against the local cluster"),
    Command(
        "render",
        _MANIFESTS,
        "print an app's Kubernetes manifests (YAML) without touching a cluster",
    ),
    Command(
        "rbac",
        _MANIFESTS,
        "print a least-privilege ServiceAccount, Role and RoleBinding for plumbline",
    ),
    Command("deploy", _APPS, "validate a plumber.R, deploy it and watch the rollout"),
    Command("restart", _APPS, "rolling restart of an app's replicas, watched to completion"),
    Command("scale", _APPS, "set an app's replica count"),
    Command("status", _APPS, "replicas, revision and endpoint URLs of an app"),
    Command("rollback", _APPS, "return an app to an earlier revision"),
    Command("logs", _APPS, "logs of all replicas of an app, each line prefixed with its replica"),
    Command("delete", _APPS, "delete everything plumbline created for an app"),
    Command(
        "server",
        "plumbline.platform.server.commands",
        "run plumbline server, which R users publish to with rsconnect",
    ),
    Command(
        "publish",
        "plumbline.platform.server.publish",
        "publish an app folder to plumbline server (as rsconnect::deployAPI does)",
    ),
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is unset or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def env_name(action: argparse.Action) -> str | None:
    """PLUMBLINE_<FLAG> for an option that takes one value or is a switch, else None."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    takes_one = action.nargs in (None, 0) and not isinstance(
        action, (argparse._AppendAction, argparse._HelpAction, argparse._VersionAction)
    )
    if not longs or not takes_one:
        return None
    return ENV_PREFIX + longs[0][2:].replace("-", "_").upper()


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _apply_env_defaults(
    parser: argparse.ArgumentParser, environ: os._Environ[str] | dict[str, str]
) -> None:
    """Every option's PLUMBLINE_<FLAG> becomes its default, checked as the flag would be."""
    for action in parser._actions:
        name = env_name(action)
        if name is None:
            continue
        if action.help and name not in action.help:
            action.help += f" [env {name}]"
        if name not in environ:
            continue
        raw = environ[name]
        if action.nargs == 0:  # a switch: store_true / store_false / store_const
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise CommandError(
                    f"{name}={raw!r}: expected on/off (1/0, true/false)", ExitCode.USAGE
                )
            if raw.strip().lower() in _TRUE:
                parser.set_defaults(**{action.dest: action.const})
            continue
        try:
            value = action.type(raw) if callable(action.type) else raw
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise CommandError(
                f"{name}={raw!r}: {exc or 'invalid value'}", ExitCode.USAGE
            ) from None
        if action.choices is not None and value not in action.choices:
            raise CommandError(
                f"{name}={raw!r}: must be one of {', '.join(map(str, action.choices))}",
                ExitCode.USAGE,
            )
        parser.set_defaults(**{action.dest: value})


def _chosen(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(
    argv: Sequence[str] | None = None, environ: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` is loaded (all of them without argv)."""
    parser = argparse.ArgumentParser(
        prog="plumbline",
        description="Serve plumber.R APIs concurrently and deploy them to Kubernetes.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"plumbline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    for command in COMMANDS:
        command_parser = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help[0].upper() + command.help[1:] + ".",
            formatter_class=HelpFormatter,
        )
        if argv is None or chosen == command.name:
            importlib.import_module(command.module).configure(command.name, command_parser)
            if command.env_defaults:
                _apply_env_defaults(command_parser, os.environ if environ is None else environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen(argv) or "plumbline"
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"plumbline {command}: {exc.message}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        print(f"plumbline {command}: interrupted", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`plumbline status | head`): stop quietly, as other tools do.
        # stdout now points at /dev/null so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.FAILED
