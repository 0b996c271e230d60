"""`plumbline serve PLUMBER_R [options]`: run one plumber.R with the R worker pool."""

from __future__ import annotations

import argparse

from plumbline.exits import CommandError, ExitCode
from plumbline.packages.requirements import lists_requirements
from plumbline.runtime import settings


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve an unchanged plumber.R: Python answers HTTP, health, metrics and docs; a pool "
        "of R worker processes runs the endpoints. Every option can also be set with its "
        "PLUMBLINE_* environment variable or in the [serve] table of a --config TOML file "
        "(flag > env > file > default)."
    )
    parser.add_argument(
        "plumber_file",
        metavar="PLUMBER_R",
        help="the plumber.R file, or the app's folder holding one",
    )
    settings.add_arguments(parser)
    parser.set_defaults(func=_serve)


def uses_package_library(plumber_file: str, config: settings.ServeConfig) -> bool:
    """Whether serving may put the app's own package library on R_LIBS: a manifest.json or
    renv.lock in the app's folder, unless packages are off."""
    return config.packages != "off" and lists_requirements(settings.app_folder(plumber_file))


def _serve(args: argparse.Namespace) -> int:
    try:
        config = settings.resolve(args)
    except settings.SettingError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from None
    from plumbline.runtime.pool.head_start import HeadStart

    # Ask R for its environment and start the zygote now: both run while Python imports the
    # server, and the zygote starts R as soon as R's environment is known.
    head_start = HeadStart(config.preload)
    if not uses_package_library(args.plumber_file, config):
        # Nothing will put a library on R_LIBS (server.use_packages): R may start now, while
        # the server is imported, rather than after.
        head_start.environment_settled()
    try:
        from plumbline.runtime import server  # uvicorn and the pool load only when serving

        return server.run(args.plumber_file, config, head_start)
    finally:
        head_start.close()
