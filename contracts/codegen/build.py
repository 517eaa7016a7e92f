"""From JSON schema to a small model of the Python types: enumerations, structs, fields.

Every keyword of the OCA schemas is either translated into a msgspec
constraint, recorded as a visible note on the field (what the types do not
enforce), or known to have no effect; any other keyword stops the generator,
so a schema feature can never be dropped silently. The translation:

=====================================  =============================================
schema                                 Python
=====================================  =============================================
``"type": "object"``                   a ``msgspec.Struct`` (frozen, kw_only,
                                       omit_defaults, gc=False)
``"additionalProperties": false``      ``forbid_unknown_fields=True``; absent (only
                                       2.x ``CustomDataType``): extras accepted
property not in ``required``           ``T | UnsetType = UNSET``: absent on the wire
                                       when unset, ``null`` rejected like the schema
``"enum"``                             a ``Literal[...]`` alias
``"type": "string"``, ``maxLength``    ``Annotated[str, Meta(max_length=n)]``
``"format": "date-time"``              ``datetime`` (RFC 3339, offset optional: ADR 0002)
``"type": "integer"`` / ``"number"``   ``int`` / ``float``; ``minimum``/``maximum`` as
                                       ``Meta(ge=..., le=...)``
``"multipleOf"``                       not enforced, noted on the field (ADR 0002)
``"type": "array"``                    ``tuple[T, ...]``; ``minItems``/``maxItems`` as
                                       ``Meta(min_length=..., max_length=...)``
``"default"``                          noted on the field; an absent value stays UNSET
no ``type`` nor any constraint         ``Any`` (2.x DataTransfer ``data``: any JSON)
=====================================  =============================================

Names: a 2.0.1/2.1 definition keeps its schema name (``IdTokenType``) and is
generated once per version however many files define it. 1.6 inline types are
named by ``names.V16_INLINE``, and one name may cover several inline copies.
Two copies of one name with different shapes stop the generator, except where
``names.ENUM_SUPERSETS`` (an enumeration: the union of the values) or
``names.RELAXATIONS`` (a keyword dropped from the stricter copy) say otherwise.
"""

from __future__ import annotations

import html
import keyword
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from contracts.codegen import names
from contracts.codegen.schemas import ActionSchemas, Schema, Version

Kind = Literal["type", "request", "response"]


class SchemaError(Exception):
    """A schema uses something the generator does not translate, or two schemas conflict."""


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]
    doc: str = field(default="", compare=False)


@dataclass(frozen=True)
class Field:
    python_name: str
    wire_name: str
    annotation: str  # the Python type, without the ``| UnsetType`` of an optional field
    required: bool
    # What the schema says that the annotation does not enforce: part of the
    # shape, so two definitions differing only there are still a conflict.
    notes: tuple[str, ...] = ()
    doc: str = field(default="", compare=False)


@dataclass(frozen=True)
class Struct:
    name: str
    kind: Kind
    fields: tuple[Field, ...]
    forbid_unknown_fields: bool
    doc: str = field(default="", compare=False)

    @property
    def dependencies(self) -> set[str]:
        return {
            word for f in self.fields for word in re.findall(r"\b[A-Z]\w*\b", f.annotation)
        } - _TYPING_NAMES


@dataclass(frozen=True)
class Module:
    """Everything one version's module holds."""

    version: Version
    enums: tuple[Enum, ...]
    types: tuple[Struct, ...]  # dependencies first
    messages: tuple[Struct, ...]  # request, response, by action name
    actions: tuple[ActionSchemas, ...]
    merged_enums: dict[str, str]  # name -> why two differing schemas were merged


# Names the generated module imports; a field must not shadow one in a class body.
_TYPING_NAMES: Final = frozenset(
    {"Annotated", "Any", "Final", "Literal", "Meta", "UNSET", "UnsetType"}
)
_RESERVED_FIELD_NAMES: Final = frozenset({"datetime", "msgspec"})

# Keywords that carry no validation: documentation and code-generation hints.
_ANNOTATIONS: Final = frozenset({"description", "javaType", "comment", "title", "$schema", "$id"})


@dataclass(frozen=True)
class _At:
    """Where the translator is: for names (1.6) and for error messages."""

    schema: Schema
    path: str  # "meterValue[].sampledValue[].unit"; a definition's name at its root

    @property
    def key(self) -> str:
        return f"{self.schema.file.removesuffix('.json')}:{self.path}"

    def child(self, segment: str) -> _At:
        return _At(self.schema, f"{self.path}.{segment}" if self.path else segment)

    def fail(self, message: str) -> SchemaError:
        return SchemaError(f"{self.schema.file} at {self.path or '$'}: {message}")


class _Translator:
    def __init__(self, version: Version) -> None:
        self.version = version
        self.enums: dict[str, Enum] = {}
        self.structs: dict[str, Struct] = {}
        self.inline_names_used: set[str] = set()
        self.inline_origins: dict[str, list[str]] = defaultdict(list)
        self.merged: dict[str, str] = {}
        self.relaxations_used: set[str] = set()

    # -- messages --------------------------------------------------------------------

    def message(self, action: ActionSchemas, kind: Kind, schema: Schema) -> Struct:
        name = f"{action.name}{'Request' if kind == 'request' else 'Response'}"
        if name in self.structs or name in self.enums:
            raise _At(schema, "").fail(f"{name} is already the name of a type")
        doc = _message_doc(action, kind, schema)
        struct = self._object(schema.document, _At(schema, ""), name, kind, doc)
        self.structs[name] = struct
        return struct

    # -- types -----------------------------------------------------------------------

    def _type(self, node: dict[str, Any], at: _At) -> tuple[str, tuple[str, ...]]:
        """The annotation for ``node``, and the notes on what it does not enforce."""
        if "$ref" in node:
            return self._ref(node, at), ()
        if "enum" in node:
            return self._inline_enum(node, at), ()
        kind = node.get("type")
        if kind == "object":
            return self._inline_object(node, at), ()
        if kind == "array":
            return self._array(node, at)
        if kind == "string":
            return self._string(node, at)
        if kind in ("integer", "number"):
            return self._number(node, at)
        if kind == "boolean":
            self._check(node, at, {"type", "default"})
            return "bool", ()
        if kind is None:  # no constraint at all: any JSON value (2.x DataTransfer data)
            self._check(node, at, set())
            return "Any", ()
        raise at.fail(f"unsupported type {kind!r}")

    def _ref(self, node: dict[str, Any], at: _At) -> str:
        self._check(node, at, {"$ref"})
        ref: str = node["$ref"]
        prefix = "#/definitions/"
        definitions = at.schema.document.get("definitions", {})
        if not ref.startswith(prefix) or ref.removeprefix(prefix) not in definitions:
            raise at.fail(f"unresolvable $ref {ref!r}")
        name = ref.removeprefix(prefix)
        definition = definitions[name]
        where = _At(at.schema, name)
        doc = _text(definition.get("description", ""))
        if "enum" in definition:
            self._add_enum(self._enum(definition, where, name, doc), where)
        elif definition.get("type") == "object":
            if name not in self.structs:  # translated once per version, then compared
                self.structs[name] = self._object(definition, where, name, "type", doc)
            else:
                candidate = self._object(definition, where, name, "type", doc)
                if candidate != self.structs[name]:
                    raise where.fail(f"{name} differs from its definition in another schema")
        else:
            raise where.fail("a definition must be an object or an enumeration")
        return name

    def _inline_name(self, at: _At, what: str) -> str:
        if self.version != "1.6":
            raise at.fail(f"inline {what}: 2.0.1 and 2.1 schemas are expected to use definitions")
        name = names.V16_INLINE.get(at.key)
        if name is None:
            raise at.fail(f"inline {what} without a name: add {at.key!r} to names.V16_INLINE")
        self.inline_names_used.add(at.key)
        self.inline_origins[name].append(at.key.replace(":", ".", 1))
        return name

    def _inline_enum(self, node: dict[str, Any], at: _At) -> str:
        name = self._inline_name(at, "enumeration")
        self._add_enum(self._enum(node, at, name, ""), at)
        return name

    def _inline_object(self, node: dict[str, Any], at: _At) -> str:
        name = self._inline_name(at, "object")
        struct = self._object(node, at, name, "type", "")
        known = self.structs.get(name)
        if known is None:
            self.structs[name] = struct
        elif known != struct:
            raise at.fail(f"{name} has another shape elsewhere; name this one differently")
        return name

    def _enum(self, node: dict[str, Any], at: _At, name: str, doc: str) -> Enum:
        # "additionalProperties" next to a string enum is an OCA generator artefact: no effect.
        self._check(node, at, {"type", "enum", "additionalProperties", "default"})
        values = node["enum"]
        if node.get("type") != "string" or not all(isinstance(v, str) for v in values):
            raise at.fail("only enumerations of strings are supported")
        if len(set(values)) != len(values):
            raise at.fail("duplicate enumeration values")
        if "default" in node:
            default = f"Schema default {node['default']!r}: an absent value stays UNSET."
            doc = f"{doc}\n\n{default}" if doc else default
        return Enum(name, tuple(values), doc)

    def _add_enum(self, enum: Enum, at: _At) -> None:
        known = self.enums.get(enum.name)
        if known is None or known == enum:
            if known is None:
                self.enums[enum.name] = enum
            return
        why = names.ENUM_SUPERSETS[self.version].get(enum.name)
        if why is None:
            raise at.fail(
                f"enumeration {enum.name} differs from another schema's: "
                f"{known.values} vs {enum.values}"
            )
        merged = known.values + tuple(v for v in enum.values if v not in known.values)
        self.enums[enum.name] = Enum(enum.name, merged, known.doc)
        self.merged[enum.name] = why

    def _object(self, node: dict[str, Any], at: _At, name: str, kind: Kind, doc: str) -> Struct:
        allowed = {"type", "properties", "required", "additionalProperties"}
        if not at.path:  # a message: its root also holds the definitions
            allowed.add("definitions")
        self._check(node, at, allowed)
        additional = node.get("additionalProperties", True)
        if additional not in (True, False):
            raise at.fail("additionalProperties must be true or false")
        properties: dict[str, Any] = node.get("properties", {})
        required = node.get("required", [])
        if set(required) - set(properties):
            raise at.fail(f"required but not a property: {sorted(set(required) - set(properties))}")
        fields = []
        for wire_name, property_schema in properties.items():
            prop, relaxed = self._relax(property_schema, at.child(wire_name))
            annotation, notes = self._type(prop, at.child(wire_name))
            if "default" in prop:
                notes = (*notes, f"default {prop['default']!r}: absent stays UNSET")
            fields.append(
                Field(
                    python_name=python_name(wire_name),
                    wire_name=wire_name,
                    annotation=annotation,
                    required=wire_name in required,
                    notes=notes,
                    doc="\n\n".join(filter(None, (_text(prop.get("description", "")), relaxed))),
                )
            )
        python_names = [f.python_name for f in fields]
        if len(set(python_names)) != len(python_names):
            raise at.fail(f"two properties map to one Python name: {python_names}")
        return Struct(name, kind, tuple(fields), additional is False, doc)

    def _relax(self, node: dict[str, Any], at: _At) -> tuple[dict[str, Any], str]:
        """``node`` without the keyword ``names.RELAXATIONS`` drops here, and why."""
        relaxation = names.RELAXATIONS[self.version].get(at.key)
        if relaxation is None:
            return node, ""
        keyword_, why = relaxation
        if keyword_ not in node:
            raise at.fail(f"names.RELAXATIONS drops {keyword_!r}, which is not there")
        self.relaxations_used.add(at.key)
        note = f"Not enforced: {keyword_} {node[keyword_]!r} ({why})."
        return {k: v for k, v in node.items() if k != keyword_}, note

    def _string(self, node: dict[str, Any], at: _At) -> tuple[str, tuple[str, ...]]:
        self._check(node, at, {"type", "maxLength", "minLength", "pattern", "format", "default"})
        fmt = node.get("format")
        if fmt == "date-time":
            if set(node) & {"maxLength", "minLength", "pattern"}:
                raise at.fail("a date-time with string constraints is not supported")
            return "datetime", ()
        notes: tuple[str, ...] = ()
        if fmt == "uri":
            notes = ('format "uri": not checked',)
        elif fmt is not None:
            raise at.fail(f"unsupported format {fmt!r}")
        meta = _meta(
            min_length=node.get("minLength"),
            max_length=node.get("maxLength"),
            pattern=node.get("pattern"),
        )
        return _annotated("str", meta), notes

    def _number(self, node: dict[str, Any], at: _At) -> tuple[str, tuple[str, ...]]:
        self._check(node, at, {"type", "minimum", "maximum", "multipleOf", "default"})
        python = "int" if node["type"] == "integer" else "float"
        convert = int if python == "int" else float
        bounds = {}
        for keyword_, meta_name in (("minimum", "ge"), ("maximum", "le")):
            if keyword_ in node:
                value = node[keyword_]
                if convert(value) != value:
                    raise at.fail(f"{keyword_} {value!r} of an integer is not integral")
                bounds[meta_name] = convert(value)
        notes: tuple[str, ...] = ()
        if "multipleOf" in node:
            notes = (f"multipleOf {node['multipleOf']}: not enforced (ADR 0002)",)
        return _annotated(python, _meta(**bounds)), notes

    def _array(self, node: dict[str, Any], at: _At) -> tuple[str, tuple[str, ...]]:
        # "additionalItems" only applies when "items" is a list of schemas; here it is
        # one schema, so (draft-04 §5.3.1, draft-06 §6.10) it has no effect.
        self._check(node, at, {"type", "items", "minItems", "maxItems", "additionalItems"})
        items = node.get("items")
        if not isinstance(items, dict):
            raise at.fail("an array needs one items schema")
        element, notes = self._type(items, _At(at.schema, f"{at.path}[]"))
        meta = _meta(min_length=node.get("minItems"), max_length=node.get("maxItems"))
        return _annotated(f"tuple[{element}, ...]", meta), notes

    @staticmethod
    def _check(node: dict[str, Any], at: _At, allowed: set[str]) -> None:
        unknown = set(node) - allowed - _ANNOTATIONS
        if unknown:
            raise at.fail(f"unsupported keyword(s) {sorted(unknown)}")


def translate(version: Version, actions: list[ActionSchemas]) -> Module:
    """The module model of ``version`` from its schemas."""
    translator = _Translator(version)
    messages = []
    for action in actions:
        messages.append(translator.message(action, "request", action.request))
        if action.response is not None:
            messages.append(translator.message(action, "response", action.response))
    if version == "1.6":
        unused = sorted(set(names.V16_INLINE) - translator.inline_names_used)
        if unused:
            raise SchemaError(f"names.V16_INLINE entries no schema uses: {unused}")
    unused = sorted(set(names.RELAXATIONS[version]) - translator.relaxations_used)
    if unused:
        raise SchemaError(f"names.RELAXATIONS entries no schema uses: {unused}")
    clash = set(translator.enums) & set(translator.structs)
    if clash:
        raise SchemaError(f"names used for an enumeration and a struct: {sorted(clash)}")

    def where(name: str, doc: str) -> str:
        origins = translator.inline_origins.get(name)
        return doc or ("Inline in " + ", ".join(sorted(set(origins))) + "." if origins else "")

    structs = translator.structs.values()
    types = [replace(s, doc=where(s.name, s.doc)) for s in structs if s.kind == "type"]
    enums = [
        replace(e, doc=where(e.name, e.doc))
        for e in sorted(translator.enums.values(), key=lambda e: e.name)
    ]
    return Module(
        version=version,
        enums=tuple(enums),
        types=tuple(_dependencies_first(types)),
        messages=tuple(messages),
        actions=tuple(actions),
        merged_enums=dict(translator.merged),
    )


def python_name(wire_name: str) -> str:
    """The snake_case Python name of a camelCase wire name."""
    name = names.SNAKE_CASE.get(wire_name)
    if name is None:
        name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", wire_name)
        name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    if not name.isidentifier() or keyword.iskeyword(name) or name in _RESERVED_FIELD_NAMES:
        raise SchemaError(f"property {wire_name!r} has no usable Python name ({name!r})")
    return name


def _dependencies_first(structs: list[Struct]) -> list[Struct]:
    by_name = {s.name: s for s in structs}
    ordered: list[Struct] = []
    state: dict[str, str] = {}

    def visit(struct: Struct) -> None:
        if state.get(struct.name) == "done":
            return
        if state.get(struct.name) == "visiting":
            raise SchemaError(f"recursive type {struct.name} is not supported")
        state[struct.name] = "visiting"
        for name in sorted(struct.dependencies):
            if name in by_name:
                visit(by_name[name])
        state[struct.name] = "done"
        ordered.append(struct)

    for struct in sorted(structs, key=lambda s: s.name):
        visit(struct)
    return ordered


def _meta(**constraints: object) -> str:
    present = [f"{k}={v!r}" for k, v in constraints.items() if v is not None]
    return f"Meta({', '.join(present)})" if present else ""


def _annotated(python: str, meta: str) -> str:
    return f"Annotated[{python}, {meta}]" if meta else python


def _message_doc(action: ActionSchemas, kind: Kind, schema: Schema) -> str:
    station, csms = "the charging station", "the CSMS"
    if action.initiator == "both":
        who = "either side"
    elif (action.initiator == "station") == (kind == "request"):
        who = station
    else:
        who = csms
    return f"{action.name} {kind}, sent by {who} ({schema.file})."


# The 2.0.1 descriptions open with a data-dictionary reference ("ID_ Token. Status.
# Authorization_ Status urn:x-oca:ocpp:uid:1:569372 Current status..."): noise here.
_DICTIONARY_REFERENCE: Final = re.compile(r"^[^\n]*?urn:x-[\w.:-]+\s*")
# Typographic quotes, which ruff (RUF001-003) flags as confusable in code.
_PLAIN: Final = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _text(description: str) -> str:
    """A schema description as plain paragraphs (the OCA text has CRLFs, HTML entities...)."""
    text = html.unescape(description).translate(_PLAIN)
    paragraphs = re.split(r"\s*(?:\r?\n){2,}\s*", text.strip())
    paragraphs = [_DICTIONARY_REFERENCE.sub("", " ".join(p.split())) for p in paragraphs]
    return "\n\n".join(p for p in paragraphs if p)


def wrap(text: str, width: int, prefix: str = "") -> list[str]:
    """``text`` as lines of at most ``width`` characters, paragraphs kept apart."""
    lines: list[str] = []
    for i, paragraph in enumerate(text.split("\n\n")):
        if i:
            lines.append(prefix.rstrip())
        lines += textwrap.wrap(
            paragraph,
            width,
            initial_indent=prefix,
            subsequent_indent=prefix,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return lines
