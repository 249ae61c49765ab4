"""Resolving parameters, conditions and intrinsic functions over plain CloudFormation."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from fogbank import TemplateError
from fogbank.model import Identity
from fogbank.model._intrinsics import (
    Resolved,
    function_name_of,
    parameter_values,
    resolve_template,
    text,
)

ARN = "arn:aws:lambda:us-east-1:123456789012"


def resolve(
    resources: Mapping[str, Any],
    overrides: Mapping[str, str] | None = None,
    identity: Identity | None = None,
    **sections: Any,
) -> Resolved:
    template = {"Resources": dict(resources), **sections}
    params, _ = parameter_values(template, overrides or {}, file="t.yaml")
    return resolve_template(template, params, identity or Identity(), file="t.yaml")


def value(expression: Any, resources: Mapping[str, Any] | None = None, **sections: Any) -> Any:
    """What `expression` resolves to as the property `V` of a resource fogbank does not serve."""
    holder = {"Holder": {"Type": "AWS::Test::Thing", "Properties": {"V": expression}}}
    resolved = resolve({**holder, **(resources or {})}, **sections)
    return resolved.resources["Holder"]["Properties"].get("V", "<removed>")


def fn(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::Function", "Properties": props}


LAMBDA = {
    "Orders": fn(FunctionName="orders-fn"),
    "Report": fn(),
    "Shared": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": {}}},
    "Deps1": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"LayerName": "deps"}},
    "Deps2": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"LayerName": "deps"}},
    "OrdersV1": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Orders"}}},
    "ReportV1": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": "Report"}},
    "OrdersV2": {
        "Type": "AWS::Lambda::Version",
        "Properties": {"FunctionName": {"Fn::GetAtt": ["Orders", "Arn"]}},
    },
    "Live": {
        "Type": "AWS::Lambda::Alias",
        "Properties": {"Name": "live", "FunctionName": {"Ref": "Orders"}, "FunctionVersion": "1"},
    },
    "Topic": {"Type": "AWS::SNS::Topic"},
    "Table": {"Type": "AWS::DynamoDB::Table"},
}


def test_physical_ids_of_lambda_resources() -> None:
    assert resolve(LAMBDA).physical_ids == {
        "Orders": "orders-fn",
        "Report": "Report",
        "Shared": f"{ARN}:layer:Shared:1",
        "Deps1": f"{ARN}:layer:deps:1",
        "Deps2": f"{ARN}:layer:deps:2",
        "OrdersV1": f"{ARN}:function:orders-fn:1",
        "ReportV1": f"{ARN}:function:Report:1",
        "OrdersV2": f"{ARN}:function:orders-fn:2",
        "Live": f"{ARN}:function:orders-fn:live",
        "Topic": f"{ARN.replace('lambda', 'sns')}:Topic",
        "Table": "Table",
    }


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "Orders"}, "orders-fn"),
        ({"Ref": "Deps2"}, f"{ARN}:layer:deps:2"),
        ({"Fn::GetAtt": ["Orders", "Arn"]}, f"{ARN}:function:orders-fn"),
        ({"Fn::GetAtt": "Report.Arn"}, f"{ARN}:function:Report"),
        ({"Fn::GetAtt": ["Shared", "LayerVersionArn"]}, f"{ARN}:layer:Shared:1"),
        ({"Fn::GetAtt": ["OrdersV2", "Version"]}, "2"),
        ({"Fn::GetAtt": ["OrdersV2", "FunctionArn"]}, f"{ARN}:function:orders-fn:2"),
        ({"Fn::GetAtt": ["Live", "AliasArn"]}, f"{ARN}:function:orders-fn:live"),
        ({"Fn::GetAtt": ["Table", "Arn"]}, "arn:aws:dynamodb:us-east-1:123456789012:Table"),
        ({"Fn::GetAtt": ["Table", "StreamArn"]}, "arn:aws:dynamodb:us-east-1:123456789012:Table"),
        ({"Fn::GetAtt": ["Table", "StreamLabel"]}, "Table.StreamLabel"),
        ({"Fn::GetAtt": ["Orders", "SnapStartResponse"]}, "Orders.SnapStartResponse"),
    ],
)
def test_ref_and_get_att(expression: Any, expected: str) -> None:
    assert value(expression, LAMBDA) == expected


def test_pseudo_parameters_follow_the_identity() -> None:
    names = ["Region", "AccountId", "StackName", "StackId", "Partition", "URLSuffix"]
    holder = {
        "Type": "AWS::Test::Thing",
        "Properties": {name: {"Ref": f"AWS::{name}"} for name in names},
    }
    identity = Identity(region="eu-west-1", account_id="111122223333")
    props = resolve({"H": holder}, identity=identity).resources["H"]["Properties"]
    assert props == {
        "Region": "eu-west-1",
        "AccountId": "111122223333",
        "StackName": "fogbank",
        "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/fogbank/"
        "00000000-0000-0000-0000-000000000000",
        "Partition": "aws",
        "URLSuffix": "amazonaws.com",
    }


def test_sub_both_forms() -> None:
    params = {"Parameters": {"Stage": {"Type": "String", "Default": "dev"}}}
    scalar = "${AWS::Region}/${Stage}/${Orders}/${Orders.Arn}/${!Literal}"
    assert value({"Fn::Sub": scalar}, LAMBDA, **params) == (
        f"us-east-1/dev/orders-fn/{ARN}:function:orders-fn/${{Literal}}"
    )
    listed = {"Fn::Sub": ["${Name}-${Count}-${Stage}", {"Name": {"Ref": "Report"}, "Count": 3}]}
    assert value(listed, LAMBDA, **params) == "Report-3-dev"


def test_join_select_split_base64_get_azs() -> None:
    assert (
        value({"Fn::Join": ["-", ["a", {"Ref": "Report"}, 7, True]]}, LAMBDA) == "a-Report-7-true"
    )
    assert value({"Fn::Join": [",", {"Fn::Split": ["|", "x|y"]}]}) == "x,y"
    assert value({"Fn::Select": ["1", ["a", {"Ref": "AWS::Region"}]]}) == "us-east-1"
    assert value({"Fn::Split": [",", "a,,b"]}) == ["a", "", "b"]
    assert (
        value({"Fn::Base64": {"Fn::Sub": "hi ${AWS::AccountId}"}})
        == base64.b64encode(b"hi 123456789012").decode()
    )
    assert value({"Fn::GetAZs": ""}) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert value({"Fn::Select": [0, {"Fn::GetAZs": "eu-west-2"}]}) == "eu-west-2a"


MAPPINGS = {"Mappings": {"Stage": {"dev": {"Memory": 256, "Tags": ["a", "b"]}}}}


def test_find_in_map() -> None:
    assert value({"Fn::FindInMap": ["Stage", "dev", "Memory"]}, **MAPPINGS) == 256
    assert value({"Fn::FindInMap": ["Stage", "dev", "Tags"]}, **MAPPINGS) == ["a", "b"]
    with_default = {"Fn::FindInMap": ["Stage", "prod", "Memory", {"DefaultValue": 128}]}
    assert value(with_default, **MAPPINGS) == 128


CONDITIONS: dict[str, Any] = {
    "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Equals": ["dev", {"Ref": "Stage"}]},
        "NotDev": {"Fn::Not": [{"Condition": "IsDev"}]},
        "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "NotDev"}]},
        "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Fn::Equals": [1, "1"]}]},
    },
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [("IsProd", "yes"), ("IsDev", "no"), ("NotDev", "yes"), ("Both", "yes"), ("Either", "yes")],
)
def test_conditions(condition: str, expected: str) -> None:
    assert value({"Fn::If": [condition, "yes", "no"]}, **CONDITIONS) == expected


def test_resources_with_a_false_condition_are_dropped() -> None:
    resources = {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "IsDev"}, **LAMBDA}
    resolved = resolve(resources, **CONDITIONS)
    assert "Alarm" not in resolved.resources
    assert "Alarm" not in resolved.physical_ids
    with pytest.raises(TemplateError) as caught:
        value({"Ref": "Alarm"}, resources, **CONDITIONS)
    assert str(caught.value) == (
        "t.yaml: resource Holder: property V: Ref to Alarm, whose Condition is false"
    )


def test_no_value_removes_keys_and_list_items() -> None:
    expression = {
        "Keep": 1,
        "Drop": {"Ref": "AWS::NoValue"},
        "List": ["a", {"Fn::If": ["IsDev", "b", {"Ref": "AWS::NoValue"}]}],
    }
    assert value(expression, **CONDITIONS) == {"Keep": 1, "List": ["a"]}
    assert value({"Fn::If": ["IsDev", "x", {"Ref": "AWS::NoValue"}]}, **CONDITIONS) == "<removed>"


def test_import_value_is_a_placeholder_with_a_warning() -> None:
    holder = {"Type": "AWS::Test::Thing", "Properties": {"V": {"Fn::ImportValue": "vpc-id"}}}
    resolved = resolve({"H": holder})
    assert resolved.resources["H"]["Properties"]["V"] == "ImportValue:vpc-id"
    assert resolved.warnings == ("H: Fn::ImportValue vpc-id has no value locally",)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Ref": "Nope"}, "property V: Ref to Nope: no such parameter or resource"),
        (
            {"Fn::GetAtt": ["Nope", "Arn"]},
            "property V: Fn::GetAtt to Nope: no such parameter or resource",
        ),
        (
            {"Fn::GetAtt": "Orders"},
            "property V: Fn::GetAtt needs [Resource, Attribute], got 'Orders'",
        ),
        ({"Fn::Select": [5, ["a"]]}, "property V: Fn::Select index 5 is out of range for ['a']"),
        (
            {"Fn::FindInMap": ["Stage", "qa", "Memory"]},
            "property V: Fn::FindInMap: no top-level key 'qa' in Mappings",
        ),
        (
            {"Fn::If": ["Unknown", 1, 2]},
            "property V: condition Unknown is not defined in Conditions",
        ),
        ({"Fn::Join": ["-", "ab"]}, "property V: expected a list of values, got 'ab'"),
        ({"Fn::Sub": "${Orders.Arn"}, None),
        ({"Fn::Sub": [1, 2, 3]}, "property V: expected a list of 2, got [1, 2, 3]"),
        ({"Fn::Sub": "${Tags}"}, "property V: expected a string, got ['a', 'b']"),
        (
            {"Nested": [{"Ref": "Nope"}]},
            "property V.Nested[0]: Ref to Nope: no such parameter or resource",
        ),
    ],
)
def test_errors_name_resource_and_property(expression: Any, message: str | None) -> None:
    sections = {
        **MAPPINGS,
        "Parameters": {"Tags": {"Type": "CommaDelimitedList", "Default": "a,b"}},
    }
    if message is None:  # not a variable: left as it is, as CloudFormation does
        assert value(expression, LAMBDA, **sections) == "${Orders.Arn"
        return
    with pytest.raises(TemplateError) as caught:
        value(expression, LAMBDA, **sections)
    assert str(caught.value) == f"t.yaml: resource Holder: {message}"


def test_a_condition_that_depends_on_itself() -> None:
    with pytest.raises(TemplateError) as caught:
        value({"Fn::If": ["A", 1, 2]}, Conditions={"A": {"Fn::Not": [{"Condition": "A"}]}})
    assert str(caught.value) == ("t.yaml: property Conditions.A: condition A depends on itself")


def test_a_false_resource_condition_is_checked_up_front() -> None:
    resources = {"T": {"Type": "AWS::SNS::Topic", "Condition": "Missing"}}
    with pytest.raises(TemplateError) as caught:
        resolve(resources, Conditions={})
    assert str(caught.value) == (
        "t.yaml: resource T: property Condition: condition Missing is not defined in Conditions"
    )


class TestParameters:
    def values(self, declared: Mapping[str, Any], **overrides: str) -> dict[str, Any]:
        result, _ = parameter_values({"Parameters": declared}, overrides, file="t.yaml")
        return result

    def error(self, declared: Mapping[str, Any], **overrides: str) -> str:
        with pytest.raises(TemplateError) as caught:
            self.values(declared, **overrides)
        return str(caught.value)

    def test_defaults_and_overrides(self) -> None:
        declared = {"Stage": {"Type": "String", "Default": "dev"}, "Size": {"Default": 30}}
        assert self.values(declared) == {"Stage": "dev", "Size": "30"}
        assert self.values(declared, Stage="prod") == {"Stage": "prod", "Size": "30"}

    def test_allowed_values(self) -> None:
        declared = {"Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]}}
        assert self.values(declared, Stage="prod") == {"Stage": "prod"}
        assert self.error(declared, Stage="qa") == (
            "t.yaml: parameter Stage: 'qa' is not one of the AllowedValues dev, prod"
        )

    def test_allowed_pattern_with_constraint_description(self) -> None:
        declared = {
            "Name": {
                "Type": "String",
                "Default": "ok-name",
                "AllowedPattern": "[a-z-]+",
                "ConstraintDescription": "lower-case letters and dashes",
            }
        }
        assert self.values(declared) == {"Name": "ok-name"}
        assert self.error(declared, Name="Bad_Name") == (
            "t.yaml: parameter Name: 'Bad_Name' does not match the AllowedPattern [a-z-]+ "
            "(lower-case letters and dashes)"
        )

    def test_numbers_and_lists(self) -> None:
        declared = {
            "Timeout": {"Type": "Number", "Default": 30},
            "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b,c"},
            "Ports": {"Type": "List<Number>", "Default": "80,443"},
        }
        assert self.values(declared) == {
            "Timeout": "30",
            "Subnets": ["a", "b", "c"],
            "Ports": ["80", "443"],
        }
        assert (
            self.error(declared, Timeout="soon")
            == "t.yaml: parameter Timeout: 'soon' is not a number"
        )
        assert self.error(declared, Ports="80,x") == "t.yaml: parameter Ports: 'x' is not a number"

    def test_a_missing_value_names_the_parameter(self) -> None:
        assert self.error({"Bucket": {"Type": "String"}}) == (
            "t.yaml: parameter Bucket has no value: give it a Default or pass an override"
        )
        assert self.values({"Bucket": {"Type": "String"}}, Bucket="b") == {"Bucket": "b"}

    def test_warnings_for_unknown_overrides_and_ssm_parameters(self) -> None:
        declared = {"Ami": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/ami/latest"}}
        values, warnings = parameter_values({"Parameters": declared}, {"Nope": "1"}, file="t")
        assert values == {"Ami": "/ami/latest"}
        assert warnings == [
            "parameter override Nope matches no parameter",
            "parameter Ami is read from SSM in AWS; fogbank uses its Default",
        ]

    def test_malformed_declarations(self) -> None:
        assert self.error({"P": "String"}) == "t.yaml: Parameters must map each name to a mapping"
        bad_pattern = {"P": {"Default": "x", "AllowedPattern": "("}}
        assert self.error(bad_pattern).startswith("t.yaml: parameter P: missing ), unterminated")


def test_text_and_function_names() -> None:
    assert [text(True), text(False), text(3), text(1.5), text("s")] == [
        "true",
        "false",
        "3",
        "1.5",
        "s",
    ]
    with pytest.raises(TypeError):
        text(None)
    assert function_name_of("orders") == "orders"
    assert function_name_of("orders:live") == "orders"
    assert function_name_of(f"{ARN}:function:orders:7") == "orders"
