"""Compatibility of two JSON Schemas of the same event type and version.

Events stay on their topic after they were published and consumers are
upgraded at their own pace, so within one schema version a change must work
both ways: consumers built on the old schema read new events, and consumers
built on the new schema read (replay) old events. Hence:

* breaking: removing or renaming a property, changing a type, adding a
  required property, required -> optional or back, null allowed or no longer
  allowed, removing an enum value, tightening a constraint (length, range,
  pattern, format, uniqueness), a different Kafka key or topic;
* warning (allowed, but consumers that validate strictly or switch
  exhaustively should be upgraded first): adding an enum value, widening a
  constraint, changing a default;
* fine: adding an optional property, changing titles and descriptions.

The walk understands what pydantic emits: ``$ref`` into ``$defs``, ``anyOf``
for unions and ``Optional``, objects, arrays, dicts (``additionalProperties``
and ``propertyNames``) and the usual keyword constraints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
# Top-level keywords the schema tool adds; a change moves events to another
# partition or topic, which breaks per-key ordering for every consumer.
_ROUTING = ("x-pearls-topic", "x-pearls-key")


@dataclass(frozen=True)
class Compatibility:
    breaking: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.breaking


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """What in ``new_schema`` breaks consumers of ``old_schema`` (empty: compatible)."""
    return compare(old_schema, new_schema).breaking


def compare(old_schema: Schema, new_schema: Schema) -> Compatibility:
    """Breaking changes and warnings, each as ``"<path>: <what changed>"``."""
    walk = _Walk(old_schema, new_schema)
    for keyword in _ROUTING:
        if old_schema.get(keyword) != new_schema.get(keyword):
            walk.breaking.append(
                f"(event): {keyword} changed from {_show(old_schema.get(keyword))} "
                f"to {_show(new_schema.get(keyword))}"
            )
    walk.node(old_schema, new_schema, "")
    return Compatibility(breaking=walk.breaking, warnings=walk.warnings)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass
class _Walk:
    old_root: Schema
    new_root: Schema
    breaking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def _break(self, path: str, what: str) -> None:
        self.breaking.append(f"{path or '(event)'}: {what}")

    def _warn(self, path: str, what: str) -> None:
        self.warnings.append(f"{path or '(event)'}: {what}")

    # -- navigation --------------------------------------------------------

    @staticmethod
    def _resolve(node: Schema, root: Schema) -> tuple[Schema, str | None]:
        """Follow ``$ref`` chains; siblings of a ``$ref`` override the target."""
        ref_seen: str | None = None
        for _ in range(32):
            ref = node.get("$ref")
            if not isinstance(ref, str):
                return node, ref_seen
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported, got {ref!r}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node, ref_seen = {**target, **siblings}, ref
        raise ValueError("$ref chain too long")

    @staticmethod
    def _branches(node: Schema) -> list[Schema] | None:
        for keyword in ("anyOf", "oneOf"):
            if isinstance(node.get(keyword), list):
                return list(node[keyword])
        return None

    # -- comparison --------------------------------------------------------

    def node(self, old: Schema, new: Schema, path: str) -> None:
        old, old_ref = self._resolve(old, self.old_root)
        new, new_ref = self._resolve(new, self.new_root)
        if old_ref and new_ref:
            if (old_ref, new_ref) in self._seen:
                return  # recursive model: this pair is already being compared
            self._seen.add((old_ref, new_ref))
        old_alts, new_alts = self._branches(old), self._branches(new)
        if old_alts is None and new_alts is None:
            self._single(old, new, path)
        else:
            self._union(old_alts or [old], new_alts or [new], path)
        if old.get("default") != new.get("default") and ("default" in old or "default" in new):
            self._warn(
                path,
                f"default changed from {_show(old.get('default'))} to {_show(new.get('default'))}",
            )

    def _union(self, old_alts: list[Schema], new_alts: list[Schema], path: str) -> None:
        def is_null(alt: Schema) -> bool:
            return alt.get("type") == "null"

        old_null, new_null = any(map(is_null, old_alts)), any(map(is_null, new_alts))
        if old_null and not new_null:
            self._break(path, "null no longer allowed (published events may carry null)")
        if new_null and not old_null:
            self._break(path, "null now allowed (consumers rely on a value)")
        old_rest = [a for a in old_alts if not is_null(a)]
        new_rest = [a for a in new_alts if not is_null(a)]
        if len(old_rest) == 1 and len(new_rest) == 1:
            self.node(old_rest[0], new_rest[0], path)
            return
        old_by, new_by = _by_signature(old_rest), _by_signature(new_rest)
        for sig in sorted(old_by.keys() - new_by.keys()):
            self._break(path, f"alternative {sig} removed")
        for sig in sorted(new_by.keys() - old_by.keys()):
            self._break(path, f"alternative {sig} added")
        for sig in sorted(old_by.keys() & new_by.keys()):
            self.node(old_by[sig], new_by[sig], path)

    def _single(self, old: Schema, new: Schema, path: str) -> None:
        old_type, new_type = _types(old), _types(new)
        if old_type != new_type:
            self._break(path, f"type changed from {_kinds(old_type)} to {_kinds(new_type)}")
            return
        self._enum(_values(old), _values(new), path)
        for keyword in ("format", "pattern", "multipleOf"):
            self._exact(keyword, old.get(keyword), new.get(keyword), path)
        for keyword in _LOWER_BOUNDS:
            self._bound(keyword, old.get(keyword), new.get(keyword), path, lower=True)
        for keyword in _UPPER_BOUNDS:
            self._bound(keyword, old.get(keyword), new.get(keyword), path, lower=False)
        if bool(old.get("uniqueItems")) != bool(new.get("uniqueItems")):
            if new.get("uniqueItems"):
                self._break(path, "items must now be unique")
            else:
                self._warn(path, "items no longer need to be unique")
        self._object(old, new, path)
        self._array(old, new, path)

    def _enum(self, old: list[Any] | None, new: list[Any] | None, path: str) -> None:
        if old is None and new is None:
            return
        if old is None:
            self._break(path, f"restricted to the values {_show(new)}")
        elif new is None:
            self._warn(path, f"no longer restricted to the values {_show(old)}")
        else:
            if removed := [v for v in old if v not in new]:
                self._break(path, f"enum values removed: {_show(removed)}")
            if added := [v for v in new if v not in old]:
                self._warn(
                    path,
                    f"enum values added: {_show(added)} (upgrade consumers that "
                    "handle every value before producing them)",
                )

    def _exact(self, keyword: str, old: Any, new: Any, path: str) -> None:
        if old == new:
            return
        if new is None:
            self._warn(path, f"{keyword} {_show(old)} dropped")
        else:
            self._break(path, f"{keyword} changed from {_show(old)} to {_show(new)}")

    def _bound(self, keyword: str, old: Any, new: Any, path: str, *, lower: bool) -> None:
        if old == new:
            return
        if new is None:
            self._warn(path, f"{keyword} {_show(old)} dropped")
        elif old is None or (new > old if lower else new < old):
            self._break(path, f"{keyword} tightened from {_show(old)} to {_show(new)}")
        else:
            self._warn(path, f"{keyword} widened from {_show(old)} to {_show(new)}")

    def _object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        for name in old_props:
            if name not in new_props:
                self._break(_child(path, name), "property removed (a rename removes it too)")
        for name in new_props:
            if name not in old_props and name in new_req:
                self._break(_child(path, name), "new required property")
        for name in old_props.keys() & new_props.keys():
            self.node(old_props[name], new_props[name], _child(path, name))
        # Required-ness of properties, and of bare keys (e.g. a dict needing "en").
        for name in sorted(old_req - new_req):
            if name in new_props or name not in old_props:
                self._break(_child(path, name), "required -> optional (consumers rely on it)")
        for name in sorted(new_req - old_req):
            if name in old_props or name not in new_props:
                self._break(_child(path, name), "optional -> required (older events lack it)")
        self._open_ended(
            "additionalProperties",
            old.get("additionalProperties"),
            new.get("additionalProperties"),
            f"{path}{{*}}",
        )
        self._open_ended(
            "propertyNames", old.get("propertyNames"), new.get("propertyNames"), f"{path}{{key}}"
        )

    def _open_ended(self, keyword: str, old: Any, new: Any, path: str) -> None:
        """A keyword whose absence (or ``true``) means "anything"."""
        old_any = old is None or old is True
        new_any = new is None or new is True
        if isinstance(old, dict) and isinstance(new, dict):
            self.node(old, new, path)
        elif old_any and not new_any:
            self._break(path, f"{keyword} restricted to {_show(new)}")
        elif new_any and not old_any:
            self._warn(path, f"{keyword} no longer restricted")
        elif old != new:  # false vs a schema: treat as a type change
            self._break(path, f"{keyword} changed from {_show(old)} to {_show(new)}")

    def _array(self, old: Schema, new: Schema, path: str) -> None:
        self._open_ended("items", old.get("items"), new.get("items"), f"{path}[]")
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self._break(path, f"tuple length changed from {len(old_prefix)} to {len(new_prefix)}")
        for index, (old_item, new_item) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.node(old_item, new_item, f"{path}[{index}]")


def _types(node: Schema) -> frozenset[str] | None:
    kind = node.get("type")
    if kind is None:
        return None
    return frozenset([kind] if isinstance(kind, str) else kind)


def _values(node: Schema) -> list[Any] | None:
    """The allowed values; pydantic writes a one-value Literal as ``const``."""
    if "enum" in node:
        return list(node["enum"])
    return [node["const"]] if "const" in node else None


def _kinds(types: frozenset[str] | None) -> str:
    return "/".join(sorted(types)) if types else "any"


def _by_signature(alts: list[Schema]) -> dict[str, Schema]:
    """Key union alternatives by what identifies them: a $ref, a const, or a type."""
    keyed: dict[str, Schema] = {}
    for alt in alts:
        if "$ref" in alt:
            sig = str(alt["$ref"]).rsplit("/", 1)[-1]
        elif "const" in alt:
            sig = f"const {_show(alt['const'])}"
        else:
            sig = _show(alt.get("type", "any"))
        keyed[sig] = alt
    return keyed
