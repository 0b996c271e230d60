"""User and group profiles in the format of RStudio Job Launcher's Kubernetes plugin.

A profiles file has sections `[*]` (everyone), `[@group]` and `[user]`, read top to bottom:
a setting in a later matching section overrides the same setting from an earlier one.
`apply_profile` fills in defaults, applies the request ratios and placement constraints,
and refuses a spec that asks for more than the caller may have, naming the limit and the
section it came from.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from plumbline.platform.spec.quantities import (
    MIB,
    QuantityError,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)
from plumbline.platform.spec.appspec import AppSpec, Resources, SpecError


class ProfileError(SpecError):
    """A profiles file that cannot be read, or a spec the caller's profile does not allow."""


@dataclass(frozen=True)
class Setting:
    key: str
    raw: str
    value: Any
    section: str  # as written: "*", "@group", "user"
    path: str
    line: int

    def describe(self) -> str:
        return (
            f"{self.key}={self.raw} from profile section [{self.section}] ({self.path}:{self.line})"
        )


@dataclass(frozen=True)
class Section:
    name: str
    line: int
    settings: dict[str, Setting]

    def matches(self, user: str, groups: set[str]) -> bool:
        if self.name == "*":
            return True
        if self.name.startswith("@"):
            return self.name[1:] in groups
        return self.name == user


@dataclass(frozen=True)
class Profiles:
    path: str
    sections: tuple[Section, ...]

    def effective(
        self, user: str, groups: set[str] | list[str] | tuple[str, ...]
    ) -> dict[str, Setting]:
        """The settings that apply to `user` in `groups`: later matching sections win."""
        result: dict[str, Setting] = {}
        for section in self.sections:
            if section.matches(user, set(groups)):
                result.update(section.settings)
        return result


# ---- parsing ----------------------------------------------------------------------------


def _number(raw: str) -> Decimal:
    value = Decimal(raw)
    if not value.is_finite() or value < 0:
        raise ValueError("must be a number, 0 or more")
    return value


def _count(raw: str) -> int:
    if not re.fullmatch(r"\d+", raw):
        raise ValueError("must be a whole number, 0 or more")
    return int(raw)


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ValueError("must be 1 or 0")


def _ratio(raw: str) -> Decimal:
    value = Decimal(raw)
    if not (0 < value <= 1):
        raise ValueError("must be in the range (0.0, 1.0]")
    return value


def _images(raw: str) -> tuple[str, ...]:
    return tuple(i.strip() for i in raw.split(",") if i.strip())


def _constraints(raw: str) -> tuple[tuple[str, str | None], ...]:
    found = []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        key, sep, value = item.partition(":")
        if not key:
            raise ValueError(f"{item!r}: a constraint is key or key:value")
        found.append((key, value if sep else None))
    return tuple(found)


_OVERRIDE = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')

_PARSERS: dict[str, Callable[[str], Any]] = {
    "default-cpus": _number,
    "default-mem-mb": _number,
    "max-cpus": _number,
    "max-mem-mb": _number,
    "default-nvidia-gpus": _count,
    "max-nvidia-gpus": _count,
    "default-amd-gpus": _count,
    "max-amd-gpus": _count,
    "container-images": _images,
    "allow-unknown-images": _flag,
    "default-container-image": str.strip,
    "placement-constraints": _constraints,
    "cpu-request-ratio": _ratio,
    "memory-request-ratio": _ratio,
}


def _overrides(raw: str, base: Path) -> tuple[tuple[str, Any], ...]:
    """`"/json/pointer":"/path/to/value.json","/other":"file2"` -> ((pointer, JSON value), ...)."""
    pairs, pos = [], 0
    while pos < len(raw):
        m = _OVERRIDE.match(raw, pos)
        if not m or m.end() == pos:
            raise ValueError('must be "{json pointer}":"{path to JSON file}",... (quoted pairs)')
        pointer, file = m.group(1), m.group(2)
        if not pointer.startswith("/"):
            raise ValueError(f"{pointer!r} is not an RFC 6901 JSON pointer (it starts with '/')")
        target = (base / file) if not Path(file).is_absolute() else Path(file)
        try:
            value = json.loads(target.read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"cannot read {target}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{target} is not valid JSON: {e}") from None
        pairs.append((pointer, value))
        pos = m.end()
    return tuple(pairs)


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def parse_profiles(path: str | Path) -> Profiles:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profiles file: {e.strerror}") from None
    return parse_profiles_text(text, str(path), path.parent)


def parse_profiles_text(
    text: str, path: str = "profiles.conf", base: Path | None = None
) -> Profiles:
    base = base or Path(".")
    sections: list[Section] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        if m := re.fullmatch(r"\[([^\]]+)\]", stripped):
            name = m.group(1).strip()
            if name.startswith("@") and len(name) == 1:
                raise ProfileError(f"{where}: [@] needs a group name")
            sections.append(Section(name, number, {}))
            continue
        key, sep, raw = stripped.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep:
            raise ProfileError(f"{where}: expected key=value or [section], got {stripped!r}")
        if not sections:
            raise ProfileError(f"{where}: {key} is outside any section ([*], [@group], [user])")
        try:
            if key == "job-json-overrides":
                value = _overrides(raw, base)
            elif key in _PARSERS:
                value = _PARSERS[key](_unquote(raw))
            else:
                raise ProfileError(
                    f"{where}: unknown setting {key!r} (known: "
                    f"{', '.join(sorted([*_PARSERS, 'job-json-overrides']))})"
                )
        except (ValueError, ArithmeticError) as e:
            if isinstance(e, ProfileError):
                raise
            raise ProfileError(f"{where}: {key}={raw}: {e}") from None
        sections[-1].settings[key] = Setting(key, raw, value, sections[-1].name, path, number)
    return Profiles(path, tuple(sections))


# ---- applying ---------------------------------------------------------------------------


def _refuse(what: str, asked: str, setting: Setting) -> ProfileError:
    return ProfileError(f"{what} {asked} is more than allowed: {setting.describe()}")


def _limit(spec: AppSpec, eff: dict[str, Setting], kind: str) -> tuple[str, str]:
    """The (request, limit) for "cpu" or "memory" after the profile's defaults, max and ratio."""
    r = spec.resources
    parse: Callable[[str], Decimal]
    fmt: Callable[[Decimal], str]
    if kind == "cpu":
        parse, fmt, unit = parse_cpu, format_cpu, Decimal(1)
        default_key, max_key, ratio_key = "default-cpus", "max-cpus", "cpu-request-ratio"
        request, limit = r.cpu_request, r.cpu_limit
    else:  # the Launcher's "MB of RAM" are read as MiB, so max-mem-mb=1024 allows 1Gi
        parse, fmt, unit = parse_memory, format_memory, Decimal(MIB)
        default_key, max_key, ratio_key = "default-mem-mb", "max-mem-mb", "memory-request-ratio"
        request, limit = r.memory_request, r.memory_limit
    user_set = f"resources.{kind}_limit" in spec.set_fields
    lim = parse(limit)
    default = eff.get(default_key)
    if not user_set and default and default.value > 0:
        lim = default.value * unit
    maximum = eff.get(max_key)
    if maximum and maximum.value > 0 and lim > maximum.value * unit:
        if user_set:
            raise _refuse(f"{kind} limit", limit, maximum)
        lim = maximum.value * unit  # plumbline's own default is merely trimmed to the cap
    ratio = eff.get(ratio_key)
    if ratio:
        req = lim * ratio.value
    else:
        req = min(parse(request), lim)
    try:
        return fmt(req), fmt(lim)
    except QuantityError as e:  # pragma: no cover - values were parsed above
        raise ProfileError(str(e)) from None


def _gpus(spec: AppSpec, eff: dict[str, Setting], vendor: str) -> int:
    field = f"{vendor}_gpus"
    asked = getattr(spec.resources, field)
    default = eff.get(f"default-{vendor}-gpus")
    if f"resources.{field}" not in spec.set_fields and default:
        asked = default.value
    maximum = eff.get(f"max-{vendor}-gpus")
    cap = maximum.value if maximum else 0
    if asked > cap:
        if maximum:
            raise _refuse(f"{vendor} GPUs", str(asked), maximum)
        raise ProfileError(
            f"{vendor} GPUs {asked}: no matching profile section sets "
            f"max-{vendor}-gpus, so none are allowed"
        )
    return asked


def _image(spec: AppSpec, eff: dict[str, Setting]) -> str:
    image = spec.image
    default = eff.get("default-container-image")
    if "image" not in spec.set_fields and default and default.value:
        image = default.value
    allow = eff.get("allow-unknown-images")
    if allow and not allow.value:
        listed = eff.get("container-images")
        if not listed or image not in listed.value:
            allowed = listed.describe() if listed else "no container-images setting"
            raise ProfileError(
                f"image {image} is not an allowed image: {allow.describe()} "
                f"and the allowed images are {allowed}"
            )
    return image


def _placement(spec: AppSpec, eff: dict[str, Setting]) -> tuple[dict, dict]:
    setting = eff.get("placement-constraints")
    selector = dict(spec.node_selector)
    affinity = dict(spec.node_affinity)
    if not setting:
        return selector, affinity
    offered: dict[str, list[str | None]] = {}
    for key, value in setting.value:
        offered.setdefault(key, []).append(value)
    for key, value in spec.node_selector.items():
        if key not in offered:
            raise ProfileError(
                f"node selector {key}={value} is not among the placement "
                f"constraints: {setting.describe()}"
            )
        if None not in offered[key] and value not in offered[key]:
            raise ProfileError(
                f"node selector {key}={value} is not an allowed value: {setting.describe()}"
            )
    for key, offers in offered.items():
        values = [v for v in offers if v is not None]
        if key in selector or len(values) < len(offers):
            continue  # chosen by the spec, or a free-form constraint the spec left open
        if len(values) == 1:
            selector[key] = values[0]
        else:
            affinity[key] = tuple(values)
    return selector, affinity


def apply_profile(
    spec: AppSpec,
    profiles: Profiles,
    user: str,
    groups: set[str] | list[str] | tuple[str, ...] = (),
) -> AppSpec:
    """The spec as `user` (member of `groups`) may deploy it, or ProfileError."""
    eff = profiles.effective(user, groups)
    cpu_request, cpu_limit = _limit(spec, eff, "cpu")
    memory_request, memory_limit = _limit(spec, eff, "memory")
    resources = Resources(
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        nvidia_gpus=_gpus(spec, eff, "nvidia"),
        amd_gpus=_gpus(spec, eff, "amd"),
    )
    selector, affinity = _placement(spec, eff)
    overrides = eff.get("job-json-overrides")
    return dataclasses.replace(
        spec,
        resources=resources,
        image=_image(spec, eff),
        node_selector=selector,
        node_affinity=affinity,
        deployment_overrides=spec.deployment_overrides + (overrides.value if overrides else ()),
    )


# ---- job-json-overrides -----------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise ProfileError(f"job-json-overrides: {pointer!r} is not a JSON pointer")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def apply_overrides(deployment: dict, overrides) -> dict:
    """Set each (RFC 6901 pointer, value) in `deployment`, in place; returns it.

    As in the Job Launcher, the value replaces what is at the pointer; missing objects on
    the way are created; `-` appends to an array.
    """
    for pointer, value in overrides:
        tokens = _tokens(pointer)
        node: Any = deployment
        for depth, token in enumerate(tokens):
            last = depth == len(tokens) - 1
            here = "/" + "/".join(tokens[: depth + 1])
            if isinstance(node, dict):
                if last:
                    node[token] = copy.deepcopy(value)
                else:
                    node = node.setdefault(token, {})
            elif isinstance(node, list):
                if token == "-" or token == str(len(node)):
                    index = len(node)
                    if not last:
                        node.append({})
                elif re.fullmatch(r"0|[1-9]\d*", token) and int(token) < len(node):
                    index = int(token)
                else:
                    raise ProfileError(f"job-json-overrides: {pointer}: no array element {here}")
                if last:
                    if index == len(node):
                        node.append(copy.deepcopy(value))
                    else:
                        node[index] = copy.deepcopy(value)
                else:
                    node = node[index]
            else:
                raise ProfileError(
                    f"job-json-overrides: {pointer}: {here} is not an object or array"
                )
    return deployment
