"""A small declarative validator for YAML documents that reports file, line and key.

PyYAML's composed node tree keeps the line of every key and value, so each problem can say
exactly where it is. Every problem is collected (not just the first), and unknown keys are
errors: a misspelt option silently ignored is how a gateway ends up sending to the wrong PACS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass
class Problems:
    path: str
    items: list[str] = field(default_factory=list)

    def add(self, node: Node | None, key: str, message: str) -> None:
        line = f"{node.start_mark.line + 1}" if node is not None else "?"
        self.items.append(f"{self.path}:{line}: {key or '(top)'}: {message}")


class Spec:
    """Base: validates a node and returns the plain Python value (or None on error)."""

    def __init__(self, *, required: bool = False, default: Any = None, doc: str = ""):
        self.required = required
        self.default = default
        self.doc = doc

    def check(self, node: Node, key: str, problems: Problems) -> Any:  # pragma: no cover
        raise NotImplementedError

    def empty(self) -> Any:
        """The value when the key is absent or null."""
        return self.default


def _scalar(node: Node, key: str, problems: Problems, what: str) -> str | None:
    if not isinstance(node, ScalarNode):
        problems.add(node, key, f"must be {what}, not a {'list' if isinstance(node, SequenceNode) else 'mapping'}")
        return None
    return node.value


class Str(Spec):
    def __init__(self, *, choices: tuple[str, ...] | None = None, max_len: int | None = None,
                 pattern: str | None = None, allow_empty: bool = False, **kw):
        super().__init__(**kw)
        self.choices, self.max_len, self.allow_empty = choices, max_len, allow_empty
        self.pattern = re.compile(pattern) if pattern else None

    def check(self, node, key, problems):
        value = _scalar(node, key, problems, "a string")
        if value is None:
            return None
        if _is_null(node):
            if self.allow_empty:
                return None
            problems.add(node, key, "must not be empty")
            return None
        if not value and not self.allow_empty:
            problems.add(node, key, "must not be empty")
            return None
        if self.choices and value not in self.choices:
            problems.add(node, key, f"must be one of {', '.join(self.choices)}, not {value!r}")
            return None
        if self.max_len and len(value) > self.max_len:
            problems.add(node, key, f"must be at most {self.max_len} characters, not {len(value)}")
            return None
        if self.pattern and not self.pattern.match(value):
            problems.add(node, key, f"{value!r} is not valid here")
            return None
        return value


class Int(Spec):
    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, **kw):
        super().__init__(**kw)
        self.minimum, self.maximum = minimum, maximum

    def check(self, node, key, problems):
        value = _scalar(node, key, problems, "a whole number")
        if value is None:
            return None
        if node.style is not None or not _INT_RE.match(value):
            problems.add(node, key, f"must be a whole number, not {value!r}")
            return None
        number = int(value)
        if self.minimum is not None and number < self.minimum:
            problems.add(node, key, f"must be at least {self.minimum}, not {number}")
            return None
        if self.maximum is not None and number > self.maximum:
            problems.add(node, key, f"must be at most {self.maximum}, not {number}")
            return None
        return number


class Duration(Spec):
    """Seconds, as a number or with a unit: ``500ms``, ``30s``, ``5m``, ``2h``, ``7d``."""

    def __init__(self, *, minimum: float = 0.0, **kw):
        super().__init__(**kw)
        self.minimum = minimum

    def check(self, node, key, problems):
        value = _scalar(node, key, problems, "a duration")
        if value is None:
            return None
        match = _DURATION_RE.match(value)
        if not match:
            problems.add(node, key, f"must be a duration such as 30s, 5m, 2h or 7d, not {value!r}")
            return None
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if seconds < self.minimum:
            problems.add(node, key, f"must be at least {self.minimum}s")
            return None
        return seconds


class Bool(Spec):
    def check(self, node, key, problems):
        value = _scalar(node, key, problems, "true or false")
        if value is None:
            return None
        if node.style is None and value.lower() in ("true", "yes", "on"):
            return True
        if node.style is None and value.lower() in ("false", "no", "off"):
            return False
        problems.add(node, key, f"must be true or false, not {value!r}")
        return None


class Map(Spec):
    """A mapping with known keys. Absent, it stands for its fields' defaults, unless
    ``optional`` (then it is None: a block such as TLS that is either given or not at all)."""

    def __init__(self, fields: dict[str, Spec], *, extra: Callable | None = None, optional: bool = False, **kw):
        super().__init__(**kw)
        self.fields = fields
        self.extra = extra  # validates keys that depend on other keys (e.g. a source's type)
        self.optional = optional

    def empty(self) -> Any:
        return None if self.optional else {name: spec.empty() for name, spec in self.fields.items()}

    def check(self, node, key, problems):
        if not isinstance(node, MappingNode):
            problems.add(node, key, "must be a mapping of keys to values")
            return None
        pairs = {}
        for knode, vnode in node.value:
            name = knode.value
            if name in pairs:
                problems.add(knode, _join(key, name), "is given twice")
            pairs[name] = (knode, vnode)
        allowed = set(self.fields)
        result = {}
        if self.extra is not None:
            result, extra_allowed = self.extra(pairs, node, key, problems)
            allowed |= extra_allowed
        for name, (knode, _vnode) in pairs.items():
            if name not in allowed:
                hint = _closest(name, allowed)
                problems.add(knode, _join(key, name), "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
        for name, spec in self.fields.items():
            if name in pairs:
                _, vnode = pairs[name]
                if _is_null(vnode) and not spec.required:
                    result[name] = spec.empty()
                    continue
                result[name] = spec.check(vnode, _join(key, name), problems)
            elif spec.required:
                problems.add(node, _join(key, name), "is required")
                result[name] = None
            else:
                result[name] = spec.empty()
        return result


class List(Spec):
    def __init__(self, item: Spec, *, min_items: int = 0, **kw):
        super().__init__(**kw)
        self.item, self.min_items = item, min_items

    def check(self, node, key, problems):
        if not isinstance(node, SequenceNode):
            problems.add(node, key, "must be a list")
            return None
        if len(node.value) < self.min_items:
            problems.add(node, key, f"needs at least {self.min_items} entr{'y' if self.min_items == 1 else 'ies'}")
        return [self.item.check(child, f"{key}[{i}]", problems) for i, child in enumerate(node.value)]


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag.endswith(":null")


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _closest(name: str, options: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None


def load(text: str, path: str, spec: Map) -> tuple[dict | None, list[str]]:
    """Parse and validate; returns (value, problems). YAML syntax errors are problems too."""
    problems = Problems(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        return None, [f"{path}:{line}: (syntax): {getattr(exc, 'problem', None) or exc}"]
    if node is None:
        return None, [f"{path}:1: (top): the file is empty"]
    value = spec.check(node, "", problems)
    return value, problems.items
