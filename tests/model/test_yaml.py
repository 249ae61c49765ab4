"""Parsing templates: CloudFormation short-form tags, JSON, and errors that name file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from fogbank import TemplateError
from fogbank.model._yaml import load_document, parse_document


def parse(source: str) -> Any:
    return parse_document(textwrap.dedent(source), file="t.yaml")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!Ref Bucket", {"Ref": "Bucket"}),
        ("!Condition IsProd", {"Condition": "IsProd"}),
        ("!GetAtt Fn.Arn", {"Fn::GetAtt": ["Fn", "Arn"]}),
        ("!GetAtt App.Outputs.TableName", {"Fn::GetAtt": ["App", "Outputs.TableName"]}),
        ("!GetAtt [Fn, Arn]", {"Fn::GetAtt": ["Fn", "Arn"]}),
        ("!Sub 'arn:${AWS::Partition}:s3:::${B}'", {"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}"}),
        ("!Sub ['${A}-x', {A: !Ref P}]", {"Fn::Sub": ["${A}-x", {"A": {"Ref": "P"}}]}),
        ("!Join [',', [a, b]]", {"Fn::Join": [",", ["a", "b"]]}),
        ("!If [C, 1, !Ref AWS::NoValue]", {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]}),
        ("!Equals [!Ref S, prod]", {"Fn::Equals": [{"Ref": "S"}, "prod"]}),
        (
            "!And [!Condition A, !Condition B]",
            {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        ),
        ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!Not [!Condition A]", {"Fn::Not": [{"Condition": "A"}]}),
        ("!Select [0, !GetAZs '']", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
        ("!Split [',', a]", {"Fn::Split": [",", "a"]}),
        ("!FindInMap [M, a, b]", {"Fn::FindInMap": ["M", "a", "b"]}),
        ("!Base64 {'Fn::Sub': 'x${Y}'}", {"Fn::Base64": {"Fn::Sub": "x${Y}"}}),
        ("!Cidr [10.0.0.0/16, 2, 8]", {"Fn::Cidr": ["10.0.0.0/16", 2, 8]}),
        ("!ImportValue shared-vpc", {"Fn::ImportValue": "shared-vpc"}),
        (
            "!Transform {Name: AWS::Include, Parameters: {Location: x.yaml}}",
            {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "x.yaml"}}},
        ),
    ],
)
def test_short_forms_become_long_forms(source: str, expected: Any) -> None:
    assert parse(f"Value: {source}\n") == {"Value": expected}


def test_long_forms_pass_through_unchanged() -> None:
    assert parse("""
        A: {"Fn::GetAtt": [Fn, Arn]}
        B:
          Fn::Sub: ${AWS::Region}
    """) == {"A": {"Fn::GetAtt": ["Fn", "Arn"]}, "B": {"Fn::Sub": "${AWS::Region}"}}


def test_nested_tags_in_block_sequences() -> None:
    assert parse("""
        Value: !Join
          - ""
          - - !Ref A
            - !GetAtt B.Arn
    """) == {"Value": {"Fn::Join": ["", [{"Ref": "A"}, {"Fn::GetAtt": ["B", "Arn"]}]]}}


def test_dates_stay_strings() -> None:
    # An unquoted AWSTemplateFormatVersion would otherwise become a datetime.date.
    assert parse("AWSTemplateFormatVersion: 2010-09-09\n") == {
        "AWSTemplateFormatVersion": "2010-09-09"
    }


def test_tags_do_not_leak_into_the_global_safe_loader() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load("A: !Ref B")
    assert yaml.safe_load("D: 2010-09-09")["D"].year == 2010


def test_json_templates() -> None:
    assert parse_document('{"Resources": {"A": {"Ref": "B"}}}', file="t.json") == {
        "Resources": {"A": {"Ref": "B"}}
    }


def test_json_error_names_file_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_document('{\n  "A": 1,\n  "B": \n}', file="t.json")
    assert str(caught.value) == "t.json:4: invalid JSON: Expecting value"


def test_yaml_error_names_file_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        parse("""
            Resources:
              Fn:
                Type: x
               Properties: y
        """)
    assert (
        str(caught.value)
        == "t.yaml:5: invalid YAML: expected <block end>, but found '<block mapping start>'"
    )


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(TemplateError) as caught:
        parse("""
            Resources:
              Fn: {}
              Fn: {}
        """)
    assert str(caught.value) == "t.yaml:4: invalid YAML: duplicate key 'Fn'"


def test_unknown_tags_and_bad_get_att_are_errors() -> None:
    with pytest.raises(TemplateError, match=r"^t\.yaml:1: invalid YAML: could not determine"):
        parse("A: !Reff B\n")
    with pytest.raises(TemplateError) as caught:
        parse("A: !GetAtt Fn\n")
    assert (
        str(caught.value) == "t.yaml:1: invalid YAML: !GetAtt Fn needs the form Resource.Attribute"
    )


def test_load_document_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "snippet.yaml"
    path.write_text("X: !Ref Y\n", encoding="utf-8")
    assert load_document(path) == {"X": {"Ref": "Y"}}


def test_unreadable_files_are_template_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        load_document(tmp_path / "nope.yaml", file="nope.yaml")
    assert str(caught.value) == "nope.yaml: cannot read the file: No such file or directory"
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TemplateError, match="not UTF-8 text"):
        load_document(binary)
