"""Routing and coercion rules: which destinations an instance goes to, and what the site replaces.

Rules are given globally (top-level ``routes`` and ``coerce``) and per source (the same keys
in a source). Both act on the finished instance, after normalisation:

* **Coercion** first (``gateway.dicom.coercion``): a source's ``coerce`` block overrides the
  global one key by key (``set`` keyword by keyword); every replaced value is recorded in the
  Original Attributes Sequence.
* **Routing** then, on the coerced instance: the source's routes, then the global ones, are
  tried in order and the **first rule that matches decides** (``to``); when none matches, the
  source's ``destinations`` (default: every enabled destination) apply. First match, not a
  union, so each rule reads on its own and a catch-all (``match: {}``) can end a list.

A ``match`` holds attribute patterns: all given keys must match (and), any pattern of a key may
(or). Patterns are shell globs (``MR1*``), compared case-insensitively with surrounding spaces
ignored; an absent attribute is the empty string.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from gateway.dicom.coercion import Coercion, PatientIdMap, read_id_map, value_problem
from gateway.schema import List, Map, Spec, Str

if TYPE_CHECKING:  # pydicom is loaded when instances are routed, not to read a configuration
    from pydicom.dataset import Dataset

log = logging.getLogger("gateway.routing")

# match key -> the DICOM keyword it reads (format is the decoder's name, not an attribute)
MATCH_KEYS = {
    "modality": "Modality",
    "station_name": "StationName",
    "manufacturer": "Manufacturer",
    "sop_class": "SOPClassUID",
    "format": None,
}


# -- configuration schema --------------------------------------------------------------------


class Globs(tuple):
    """Patterns that remember their line in the configuration."""

    line: int = 0


class Patterns(Spec):
    """One pattern or a list of them."""

    def check(self, node, key, problems):
        items = node.value if isinstance(node, SequenceNode) else [node]
        if not items:
            problems.add(node, key, "needs at least one pattern")
            return None
        out = []
        for item in items:
            if not isinstance(item, ScalarNode) or not item.value.strip():
                problems.add(item, key, "must be a non-empty text or a list of them")
                return None
            out.append(item.value.strip())
        globs = Globs(out)
        globs.line = node.start_mark.line + 1
        return globs


class Located(Str):
    """A string with the line it is on, for problems found after the schema (a destination
    that does not exist, a CSV file's contents)."""

    def check(self, node, key, problems):
        value = super().check(node, key, problems)
        return None if value is None else (value, node.start_mark.line + 1)


class Settings(Spec):
    """``set``: DICOM keyword -> value, each keyword from the safe list and each value fit for its VR."""

    def check(self, node, key, problems):
        if not isinstance(node, MappingNode):
            problems.add(node, key, "must be a mapping of DICOM keywords to values")
            return None
        out = {}
        for knode, vnode in node.value:
            where = f"{key}.{knode.value}"
            if not isinstance(vnode, ScalarNode):
                problems.add(vnode, where, "must be a single value")
                continue
            problem = value_problem(knode.value, vnode.value)
            if problem:
                problems.add(knode, where, problem)
            else:
                out[knode.value] = vnode.value
        return out


def _match_spec() -> Map:
    return Map({name: Patterns() for name in MATCH_KEYS}, required=True)


ROUTES = List(
    Map({
        "match": _match_spec(),
        "to": List(Located(pattern=r"^[A-Za-z0-9_.-]+$"), required=True, min_items=1,
                   doc="destination names (an instance with none would be acknowledged and never sent)"),
    }),
    doc="first matching rule decides; none matching: the source's destinations",
)

COERCE = Map(
    {
        "institution_name": Str(max_len=64, doc="replaces InstitutionName"),
        "accession_number": Str(max_len=16, doc="replaces AccessionNumber"),
        "set": Settings(doc="DICOM keyword -> value, for the keywords in gateway.dicom.coercion.SAFE_KEYWORDS"),
        "patient_ids": Map(
            {
                "file": Located(required=True, doc="CSV file with a header line"),
                "from_column": Str(required=True, doc="column of the legacy Patient IDs"),
                "to_column": Str(required=True, doc="column of today's Patient IDs (MRN)"),
                "unmapped": Str(default="keep", choices=("keep", "reject"),
                                doc="an ID not in the file: keep it, or reject the capture to quarantine"),
                "delimiter": Str(default=",", max_len=1),
            },
            optional=True,
        ),
    },
    optional=True,
)


# -- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # match key -> globs

    def matches(self, ds: Dataset, fmt: str) -> bool:
        return all(_any_glob(_values(ds, fmt, key), globs) for key, globs in self.patterns.items())


def _values(ds: Dataset, fmt: str, key: str) -> list[str]:
    if key == "format":
        return [fmt]
    value = str(ds.get(MATCH_KEYS[key], "") or "").strip()
    if key == "sop_class" and value:
        from pydicom.uid import UID

        return [value, UID(value).name]  # the UID or its name ("CT Image Storage")
    return [value]


def _any_glob(values: list[str], globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(v.upper(), g.upper()) for v in values for g in globs)


@dataclass(frozen=True)
class Route:
    match: Match
    to: tuple[str, ...]
    name: str  # where it was configured ("routes[0]", "sources[1].routes[2]"), for the debug log


@dataclass(frozen=True)
class Rules:
    """The rules in force for one source: its routes then the global ones, and the merged coercion."""

    routes: tuple[Route, ...] = ()
    coercion: Coercion = Coercion()

    def destinations(self, ds: Dataset, fmt: str, default: tuple[str, ...]) -> tuple[str, ...]:
        for route in self.routes:
            if route.match.matches(ds, fmt):
                log.debug("event=routed rule=%s to=%s", route.name, ",".join(route.to))
                return route.to
        return default

    def coerce(self, ds: Dataset, origin: str) -> bool:
        """Apply the coercion; ``origin`` is recorded as the source of the previous values."""
        return self.coercion.apply(ds, origin) if self.coercion else False


@dataclass(frozen=True)
class Routing:
    """Every source's rules; a name not configured as a source (``convert``) gets the global ones."""

    default: Rules = Rules()
    sources: Mapping[str, Rules] = field(default_factory=dict)

    def rules(self, source: str) -> Rules:
        return self.sources.get(source, self.default)

    def coercions_only(self) -> "Routing":
        """The same coercions without routes (a command whose operator chose the destinations)."""
        return Routing(Rules((), self.default.coercion),
                       {name: Rules((), rules.coercion) for name, rules in self.sources.items()})

    def destinations(self, ds: Dataset, fmt: str, source: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return self.rules(source).destinations(ds, fmt, default)

    def coerce(self, ds: Dataset, source: str, origin: str) -> bool:
        return self.rules(source).coerce(ds, origin)


# -- from the validated configuration --------------------------------------------------------

def build(raw: dict, path: str) -> tuple[Routing, list[str]]:
    """The routing from the schema-checked configuration, and the problems only the whole file
    (destination names, format names) or the CSV files reveal."""
    names = {d["name"] for d in raw["destinations"]}
    problems: list[str] = []
    maps: dict[tuple, PatientIdMap | None] = {}  # one read per file, however many sources share it

    def routes(items, key: str) -> tuple[Route, ...]:
        out = []
        for i, item in enumerate(items or []):
            where = f"{key}[{i}]"
            for name, line in item["to"]:
                if name not in names:
                    problems.append(f"{path}:{line}: {where}.to: no destination named {name!r}; "
                                    f"configured: {', '.join(sorted(names))}")
            patterns = {k: v for k, v in item["match"].items() if v}
            fmts = patterns.get("format", Globs())
            problems.extend(f"{path}:{fmts.line}: {where}.match.format: {p}" for p in _format_problems(fmts))
            out.append(Route(Match(patterns), tuple(dict.fromkeys(n for n, _ in item["to"])), where))
        return tuple(out)

    def coercion(block, key: str) -> Coercion | None:
        if not block:
            return None
        settings = dict(block.get("set") or {})
        for option, keyword in (("institution_name", "InstitutionName"), ("accession_number", "AccessionNumber")):
            if block.get(option):
                settings[keyword] = block[option]
        ids = block.get("patient_ids")
        return Coercion(settings, _id_map(ids, f"{key}.patient_ids", path, maps, problems) if ids else None)

    global_rules = Rules(routes(raw.get("routes"), "routes"), coercion(raw.get("coerce"), "coerce") or Coercion())
    per_source = {}
    for i, src in enumerate(raw["sources"] or []):
        own = routes(src.get("routes"), f"sources[{i}].routes")
        own_coercion = coercion(src.get("coerce"), f"sources[{i}].coerce")
        per_source[src["name"]] = Rules(own + global_rules.routes, global_rules.coercion.merged(own_coercion))
    return Routing(global_rules, per_source), problems


def _id_map(block: dict, key: str, path: str, maps: dict, problems: list[str]) -> PatientIdMap | None:
    (file, line) = block["file"]
    ident = (file, block["from_column"], block["to_column"], block["delimiter"], block["unmapped"])
    if ident not in maps:
        ids, found = read_id_map(file, block["from_column"], block["to_column"], block["delimiter"])
        problems.extend(f"{path}:{line}: {key}.file: {p}" for p in found)
        maps[ident] = None if found else PatientIdMap(file, ids, block["unmapped"] == "reject")
    return maps[ident]


def _format_problems(patterns: tuple[str, ...]) -> list[str]:
    if not patterns:
        return []
    from gateway import formats  # only when a rule names a format: it imports every decoder

    known = [d.name for d in formats.decoders()]
    return [f"{p!r} matches no format; known: {', '.join(known)}" for p in patterns
            if not any(fnmatch.fnmatchcase(k.upper(), p.upper()) for k in known)]
