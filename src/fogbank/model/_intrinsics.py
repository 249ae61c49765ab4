"""Resolve a CloudFormation template's parameters, conditions and intrinsic functions.

This runs after SAM translation, on plain CloudFormation. Physical ids of Lambda resources are the
ones fogbank serves them under (a function's name, version and alias ARNs, layer version ARNs);
anything fogbank does not run resolves to a stable placeholder rather than an error, because
templates routinely reference tables, queues and roles that only exist in AWS.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fogbank._errors import TemplateError
from fogbank.model._app import Identity
from fogbank.model._service_arns import ServiceResource

STACK_NAME = "fogbank"


NO_VALUE: Final = object()
"""What `{"Ref": "AWS::NoValue"}` resolves to; the enclosing key or list item is removed."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SERVICE_OF_TYPE = re.compile(r"^AWS::(\w+)::")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def text(value: Any) -> str:
    """CloudFormation's conversion of a scalar to a string (`true`, not Python's `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def function_name_of(reference: str) -> str:
    """The bare function name in `name`, `name:qualifier` or a function ARN."""
    parts = reference.split(":")
    return parts[6] if reference.startswith("arn:") and len(parts) > 6 else parts[0]


def pseudo_parameters(identity: Identity) -> dict[str, Any]:
    """The `AWS::*` pseudo parameters as fogbank's pretend account answers them."""
    partition = "aws-cn" if identity.region.startswith("cn-") else "aws"
    return {
        "AWS::Region": identity.region,
        "AWS::AccountId": identity.account_id,
        "AWS::StackName": STACK_NAME,
        "AWS::StackId": f"arn:{partition}:cloudformation:{identity.region}:{identity.account_id}"
        f":stack/{STACK_NAME}/00000000-0000-0000-0000-000000000000",
        "AWS::Partition": partition,
        "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


def parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str], *, file: str
) -> tuple[dict[str, Any], list[str]]:
    """Each declared parameter's value (override, else `Default`), checked; plus warnings."""
    declared = template.get("Parameters") or {}
    if not isinstance(declared, dict) or not all(isinstance(s, dict) for s in declared.values()):
        raise TemplateError("Parameters must map each name to a mapping", file=file)
    values: dict[str, Any] = {}
    warnings = [
        f"parameter override {n} matches no parameter" for n in overrides if n not in declared
    ]
    for name, spec in declared.items():
        if name not in overrides and "Default" not in spec:
            message = f"parameter {name} has no value: give it a Default or pass an override"
            raise TemplateError(message, file=file)
        if name not in overrides and str(spec.get("Type")).startswith("AWS::SSM::Parameter"):
            warnings.append(f"parameter {name} is read from SSM in AWS; fogbank uses its Default")
        values[name] = _checked(name, spec, overrides.get(name, spec.get("Default")), file)
    return values, warnings


def _checked(name: str, spec: Mapping[str, Any], raw: Any, file: str) -> str | list[str]:
    kind = str(spec.get("Type", "String"))
    is_list = kind == "CommaDelimitedList" or kind.startswith("List<")

    def fail(problem: str) -> TemplateError:
        hint = f" ({spec['ConstraintDescription']})" if "ConstraintDescription" in spec else ""
        return TemplateError(f"parameter {name}: {problem}{hint}", file=file)

    try:
        parts = raw if isinstance(raw, list) else text(raw).split(",") if is_list else [raw]
        items = [text(item).strip() if is_list else text(item) for item in parts]
        allowed = [text(value) for value in spec.get("AllowedValues") or []]
        pattern = re.compile(str(spec.get("AllowedPattern", ".*")), re.DOTALL)
    except (TypeError, re.error) as exc:
        raise fail(str(exc)) from None
    for item in items:
        if allowed and item not in allowed:
            raise fail(f"{item!r} is not one of the AllowedValues {', '.join(allowed)}")
        if not pattern.fullmatch(item):
            raise fail(f"{item!r} does not match the AllowedPattern {pattern.pattern}")
        if kind in ("Number", "List<Number>") and not _NUMBER.fullmatch(item):
            raise fail(f"{item!r} is not a number")
    return items if is_list else items[0]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A template's resources with every intrinsic resolved and false-condition resources dropped."""

    resources: dict[str, dict[str, Any]]
    """Logical id -> `{"Type", "Properties", "Metadata"}`, in template order."""
    physical_ids: dict[str, str]
    """Logical id -> what `Ref` gives (a function's name, a version's or layer version's ARN)."""
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _At:
    """Where in the template a value sits, for error messages."""

    resource: str | None
    path: str = ""

    def child(self, key: str | int) -> _At:
        step = f"[{key}]" if isinstance(key, int) else f".{key}" if self.path else key
        return _At(self.resource, self.path + step)


def resolve_template(
    template: Mapping[str, Any], parameters: Mapping[str, Any], identity: Identity, *, file: str
) -> Resolved:
    """Resolve `Resources` (not `Outputs`) against parameter values from `parameter_values`."""
    resolver = _Resolver(template, parameters, identity, file)
    resources = {
        logical_id: {
            "Type": resource.get("Type"),
            "Properties": resolver.resolve(resource.get("Properties") or {}, _At(logical_id)),
            "Metadata": resource.get("Metadata") or {},
        }
        for logical_id, resource in resolver.live.items()
    }
    physical_ids = {name: resolver.physical_id(name, _At(name)) for name in resolver.live}
    return Resolved(resources, physical_ids, tuple(resolver.warnings))


class _Resolver:
    def __init__(
        self, template: Mapping[str, Any], params: Mapping[str, Any], identity: Identity, file: str
    ) -> None:
        self.resources: dict[str, Any] = template.get("Resources") or {}
        self._conditions: Mapping[str, Any] = template.get("Conditions") or {}
        self._mappings: Mapping[str, Any] = template.get("Mappings") or {}
        self._values = {**pseudo_parameters(identity), **params}
        self._identity, self._file = identity, file
        self._truths: dict[str, bool] = {}
        self._pending: set[str] = set()
        self.physical: dict[str, str] = {}
        self.warnings: list[str] = []
        self._functions: dict[str, Callable[[Any, _At], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::And": lambda arg, at: all(self._truth(c, at) for c in self._list(arg, at)),
            "Fn::Or": lambda arg, at: any(self._truth(c, at) for c in self._list(arg, at)),
            "Fn::Not": lambda arg, at: not self._truth(self._list(arg, at, 1)[0], at),
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda arg, at: base64.b64encode(self._text(arg, at).encode()).decode(),
            "Fn::GetAZs": self._get_azs,
            "Fn::ImportValue": self._import_value,
        }
        # Conditions only read parameters, so which resources exist is settled before any Ref.
        self.live: dict[str, Any] = {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if "Condition" not in resource
            or self.condition(resource["Condition"], _At(logical_id, "Condition"))
        }

    def error(self, at: _At, message: str) -> TemplateError:
        return TemplateError(message, file=self._file, resource=at.resource, prop=at.path or None)

    def resolve(self, node: Any, at: _At) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                function = self._functions.get(key)
                if function is not None:
                    return function(arg, at)
            resolved = {key: self.resolve(value, at.child(str(key))) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not NO_VALUE}
        if isinstance(node, list):
            items = [self.resolve(value, at.child(i)) for i, value in enumerate(node)]
            return [item for item in items if item is not NO_VALUE]
        return node

    def _list(self, arg: Any, at: _At, length: int | None = None) -> list[Any]:
        value = self.resolve(arg, at) if isinstance(arg, dict) else arg
        if not isinstance(value, list) or len(value) != (length or len(value)):
            raise self.error(at, f"expected a list of {length or 'values'}, got {value!r}")
        return value

    def _text(self, node: Any, at: _At) -> str:
        value = self.resolve(node, at)
        try:
            return text(value)
        except TypeError:
            raise self.error(at, f"expected a string, got {value!r}") from None

    def condition(self, name: Any, at: _At) -> bool:
        if not isinstance(name, str) or name not in self._conditions:
            raise self.error(at, f"condition {name} is not defined in Conditions")
        if name not in self._truths:
            key = f"Conditions.{name}"
            if key in self._pending:
                raise self.error(at, f"condition {name} depends on itself")
            self._pending.add(key)
            self._truths[name] = self._truth(self._conditions[name], _At(None, key))
            self._pending.discard(key)
        return self._truths[name]

    def _truth(self, node: Any, at: _At) -> bool:
        if isinstance(node, dict) and list(node) == ["Condition"]:
            return self.condition(node["Condition"], at)
        value = self.resolve(node, at)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(at, f"a condition must be true or false, got {value!r}")
        return value

    def _ref(self, arg: Any, at: _At) -> Any:
        if arg == "AWS::NoValue":
            return NO_VALUE
        if isinstance(arg, str) and arg in self._values:
            return self._values[arg]
        return self.physical_id(self._resource_name(arg, at, "Ref"), at)

    def _resource_name(self, name: Any, at: _At, function: str) -> str:
        if not isinstance(name, str) or name not in self.resources:
            raise self.error(at, f"{function} to {name}: no such parameter or resource")
        if name not in self.live:
            raise self.error(at, f"{function} to {name}, whose Condition is false")
        return name

    def physical_id(self, name: str, at: _At) -> str:
        if name not in self.physical:
            if name in self._pending:
                raise self.error(at, f"the name of {name} depends on itself")
            self._pending.add(name)
            self.physical[name] = self._physical_id(name)
            self._pending.discard(name)
        return self.physical[name]

    def _physical_id(self, name: str) -> str:
        kind, ident = self._type(name), self._identity
        if kind == "AWS::Lambda::Function":
            return self._owner(name, "FunctionName")
        if kind == "AWS::Lambda::LayerVersion":
            layer = self._owner(name, "LayerName")
            return ident.layer_arn(layer, self._ordinal(name, "LayerName", layer))
        if kind == "AWS::Lambda::Alias":
            alias = self._text(self._property(name, "Name", None), _At(name, "Name"))
            return ident.function_arn(self._owner(name, "FunctionName"), alias)
        if kind == "AWS::Lambda::Version":
            function = self._owner(name, "FunctionName")
            return ident.function_arn(function, str(self._ordinal(name, "FunctionName", function)))
        if (found := self._service_resource(name).physical_id()) is not None:
            return found
        return self._placeholder_arn(name, kind) if kind == "AWS::SNS::Topic" else name

    def _owner(self, name: str, prop: str) -> str:
        """The function (or layer) name a resource gives in `prop`; its logical id if none."""
        return function_name_of(self._text(self._property(name, prop, name), _At(name, prop)))

    def _property(self, name: str, prop: str, default: Any) -> Any:
        props = self.resources[name].get("Properties")
        return props.get(prop, default) if isinstance(props, dict) else default

    def _ordinal(self, name: str, prop: str, owner: str) -> int:
        """1 + how many earlier resources of `name`'s type share its layer or function: its version."""
        earlier = list(self.live)[: list(self.live).index(name)]
        kind = self._type(name)
        return 1 + sum(self._type(o) == kind and self._owner(o, prop) == owner for o in earlier)

    def _type(self, name: str) -> str:
        return str(self.resources[name].get("Type", ""))

    def _placeholder_arn(self, name: str, kind: str) -> str:
        match = _SERVICE_OF_TYPE.match(kind)
        return self._arn(match.group(1).lower() if match else "cloudformation", name)

    def _arn(self, service: str, resource: str) -> str:
        ident, partition = self._identity, self._values["AWS::Partition"]
        return f"arn:{partition}:{service}:{ident.region}:{ident.account_id}:{resource}"

    def _service_resource(self, name: str) -> ServiceResource:
        def prop(key: str) -> str | None:
            value = self._property(name, key, None)
            return None if value is None else self._text(value, _At(name, key))

        return ServiceResource(
            self._type(name), name, prop, self._arn, lambda: self.physical_id(name, _At(name))
        )

    def _get_att(self, arg: Any, at: _At) -> Any:
        parts = arg.split(".", 1) if isinstance(arg, str) else self._list(arg, at)
        if len(parts) != 2:
            raise self.error(at, f"Fn::GetAtt needs [Resource, Attribute], got {arg!r}")
        name = self._resource_name(parts[0], at, "Fn::GetAtt")
        attribute, kind = self._text(parts[1], at), self._type(name)
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self._identity.function_arn(self.physical_id(name, at))
        if (kind, attribute) in (
            ("AWS::Lambda::LayerVersion", "LayerVersionArn"),
            ("AWS::Lambda::Alias", "AliasArn"),
            ("AWS::Lambda::Version", "FunctionArn"),
        ):
            return self.physical_id(name, at)
        if kind == "AWS::Lambda::Version" and attribute == "Version":
            return self.physical_id(name, at).rsplit(":", 1)[1]
        if (found := self._service_resource(name).attribute(attribute)) is not None:
            return found
        # Unknown: an ARN-shaped placeholder for ARNs (destinations guess their kind from the
        # service), otherwise the GetAtt itself, so the value is recognisable where it lands.
        if attribute.endswith("Arn"):
            return self._placeholder_arn(name, kind)
        return f"{name}.{attribute}"

    def _sub(self, arg: Any, at: _At) -> str:
        if isinstance(arg, str):
            source, variables = arg, {}
        else:
            raw_source, raw_variables = self._list(arg, at, 2)
            source, variables = raw_source, self.resolve(raw_variables, at)
            if not isinstance(source, str) or not isinstance(variables, dict):
                raise self.error(at, "Fn::Sub needs a string or [string, {variables}]")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                value = self._get_att(name, at)
            else:
                value = self._ref(name, at)
            return self._text(value, at)

        return _SUB_VARIABLE.sub(substitute, source)

    def _join(self, arg: Any, at: _At) -> str:
        delimiter, items = self._list(arg, at, 2)
        return self._text(delimiter, at).join(self._text(i, at) for i in self._list(items, at))

    def _if(self, arg: Any, at: _At) -> Any:
        name, when_true, when_false = self._list(arg, at, 3)
        return self.resolve(when_true if self.condition(name, at) else when_false, at)

    def _equals(self, arg: Any, at: _At) -> bool:
        left, right = (self.resolve(side, at) for side in self._list(arg, at, 2))
        if isinstance(left, list) or isinstance(right, list):
            return bool(left == right)
        return self._text(left, at) == self._text(right, at)

    def _select(self, arg: Any, at: _At) -> Any:
        index, items = self._list(arg, at, 2)
        values = self._list(items, at)
        position = self._text(index, at)
        if not position.isdigit() or int(position) >= len(values):
            raise self.error(at, f"Fn::Select index {position} is out of range for {values!r}")
        return self.resolve(values[int(position)], at)

    def _split(self, arg: Any, at: _At) -> list[str]:
        delimiter, source = self._list(arg, at, 2)
        return self._text(source, at).split(self._text(delimiter, at))

    def _find_in_map(self, arg: Any, at: _At) -> Any:
        parts = self._list(arg, at)
        if len(parts) not in (3, 4):
            raise self.error(at, "Fn::FindInMap needs [Map, TopKey, SecondKey]")
        keys = [self._text(part, at) for part in parts[:3]]
        node: Any = self._mappings
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                if len(parts) == 4 and isinstance(parts[3], dict) and "DefaultValue" in parts[3]:
                    return self.resolve(parts[3]["DefaultValue"], at)
                missing = ("mapping", "top-level key", "second-level key")[depth]
                raise self.error(at, f"Fn::FindInMap: no {missing} {key!r} in Mappings")
            node = node[key]
        return node

    def _get_azs(self, arg: Any, at: _At) -> list[str]:
        region = self._text(arg, at) or self._identity.region
        return [f"{region}{zone}" for zone in "abc"]

    def _import_value(self, arg: Any, at: _At) -> str:
        name = self._text(arg, at)
        self.warnings.append(f"{at.resource}: Fn::ImportValue {name} has no value locally")
        return f"ImportValue:{name}"
