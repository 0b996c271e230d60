"""Fixtures of the compat suite; the harness itself is compat_harness.py."""

from __future__ import annotations

import pytest

from compat_harness import SELFCHECK, Launcher, PairSpec, serve_problem

_ORDER: list[PairSpec] = []


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(session, config, items):
    _ORDER.clear()
    for item in items:
        if "pair" not in getattr(item, "fixturenames", ()):
            continue
        spec = PairSpec.of(item.cls or item.module)
        if spec is not None and (not _ORDER or _ORDER[-1] != spec):
            _ORDER.append(spec)


@pytest.fixture(scope="session")
def launcher():
    # A plumbline that cannot start fails every compat test: never a skip, which would
    # leave the suite green with nothing compared.
    problem = None if SELFCHECK else serve_problem()
    if problem:
        pytest.fail(f"`plumbline serve` cannot run in this checkout: {problem}", pytrace=False)
    pairs = Launcher(list(_ORDER))
    yield pairs
    pairs.close()


@pytest.fixture(scope="class")
def pair(request, launcher):
    """One pair of servers per test class, or per module for tests outside a class; see
    PairSpec for the attributes that configure it."""
    if request.cls is None:
        yield request.getfixturevalue("module_pair")
        return
    yield from _serve(PairSpec.of(request.cls), launcher)


@pytest.fixture(scope="module")
def module_pair(request, launcher):
    yield from _serve(PairSpec.of(request.module), launcher)


def _serve(spec: PairSpec, launcher: Launcher):
    missing = spec.missing_package()
    if missing:  # an optional package Debian does not ship (e.g. coro): reported as a skip
        pytest.skip(f"R package {missing!r} is not installed")
    servers = launcher.take(spec)
    yield servers
    servers.close()
