"""Placeholder: sub-commands are registered here."""


def register(subparsers) -> None:
    pass
