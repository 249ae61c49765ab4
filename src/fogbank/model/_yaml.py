"""Read CloudFormation templates written in YAML (with short-form tags) or JSON.

Short forms become the long forms CloudFormation itself uses (`!GetAtt A.B` becomes
`{"Fn::GetAtt": ["A", "B"]}`), so everything after this module only ever sees plain JSON-shaped data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fogbank._errors import TemplateError

# Tags whose long form is `Fn::<Tag>`; `!Ref` and `!Condition` keep their bare names.
_FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form tags and rejects duplicate keys.

    A subclass, so that the tags never leak into `yaml.safe_load` elsewhere in the process.
    """

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # CloudFormation refuses duplicate keys; PyYAML would silently keep the last one.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# `AWSTemplateFormatVersion: 2010-09-09` must stay a string, not become a date, so the
# timestamp resolver is dropped (on a copy: SafeLoader's own table is left alone).
CloudFormationLoader.yaml_implicit_resolvers = {
    first: [pair for pair in resolvers if pair[0] != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_plain(loader: CloudFormationLoader, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise ConstructorError(None, None, f"unexpected node for {node.tag}", node.start_mark)


def _long_form(name: str) -> Any:
    def construct(loader: CloudFormationLoader, node: Node) -> dict[str, Any]:
        return {name: _construct_plain(loader, node)}

    return construct


def _construct_get_att(loader: CloudFormationLoader, node: Node) -> dict[str, Any]:
    value = _construct_plain(loader, node)
    if isinstance(value, str):
        # `!GetAtt Resource.Attribute`; attributes may contain dots (`Outputs.TableName`),
        # resource logical ids never do, so split on the first one only.
        resource, dot, attribute = value.partition(".")
        if not dot:
            raise ConstructorError(
                None, None, f"!GetAtt {value} needs the form Resource.Attribute", node.start_mark
            )
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


CloudFormationLoader.add_constructor("!Ref", _long_form("Ref"))
CloudFormationLoader.add_constructor("!Condition", _long_form("Condition"))
CloudFormationLoader.add_constructor("!GetAtt", _construct_get_att)
for _tag in _FN_TAGS:
    CloudFormationLoader.add_constructor(f"!{_tag}", _long_form(f"Fn::{_tag}"))


def parse_document(text: str, *, file: str) -> Any:
    """Parse template text (JSON or YAML); a syntax error becomes a `TemplateError` naming `file:line`."""
    if text.lstrip().startswith("{"):
        # JSON is (almost) YAML, but json gives clearer messages for JSON mistakes.
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"invalid JSON: {exc.msg}", file=f"{file}:{exc.lineno}") from exc
    try:
        return yaml.load(text, Loader=CloudFormationLoader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        problem = exc.problem or exc.context or "invalid YAML"
        raise TemplateError(f"invalid YAML: {problem}", file=where) from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"invalid YAML: {exc}", file=file) from exc


def load_document(path: Path, *, file: str | None = None) -> Any:
    """Read and parse a template or template snippet; `file` names it in errors (default: the path)."""
    name = file or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read the file: {exc.strerror or exc}", file=name) from exc
    except UnicodeDecodeError as exc:
        raise TemplateError("cannot read the file: it is not UTF-8 text", file=name) from exc
    return parse_document(text, file=name)
