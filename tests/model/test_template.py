"""Loading SAM and CloudFormation templates into the app model, end to end."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from fogbank import TemplateError
from fogbank.model import (
    LATEST,
    SUPPORTED_RUNTIMES,
    Alias,
    App,
    DeploymentPreference,
    Destination,
    Identity,
    ShiftKind,
    TenancyMode,
    load_template,
)

TEMPLATES = Path(__file__).parent / "templates"
ARN = "arn:aws:lambda:us-east-1:123456789012"
SAM = "Transform: AWS::Serverless-2016-10-31\n"


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy of the fixture templates, so that inline code is never written into the repo."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return target


def write(
    directory: Path, body: str, *, name: str = "template.yaml", dirs: tuple[str, ...] = ("src",)
) -> Path:
    for code_dir in dirs:
        (directory / code_dir).mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def sam_function(
    directory: Path, props: str = "", *, extra: str = "", head: str = "", transform: str = SAM
) -> Path:
    """A SAM template with one function `Fn` plus `extra` resources.

    `Fn` has Runtime python3.12, Handler app.handler and CodeUri src/ unless `props` sets them
    (fogbank rejects repeated keys, so the defaults make way).
    """
    own = textwrap.dedent(props)
    keys = {line.split(":", 1)[0] for line in own.splitlines() if line and not line[0].isspace()}
    defaults = {"Runtime": "python3.12", "Handler": "app.handler", "CodeUri": "src/"}
    lines = "".join(f"{k}: {v}\n" for k, v in defaults.items() if k not in keys) + own
    return write(
        directory,
        f"{transform}{textwrap.dedent(head)}Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        + textwrap.indent(lines, " " * 6)
        + textwrap.indent(textwrap.dedent(extra), " " * 2),
    )


def load_error(path: Path, **overrides: str) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path, parameter_overrides=overrides)
    return str(caught.value)


def test_hello_world_api(fixtures: Path) -> None:
    app = load_template(fixtures / "hello_api" / "template.yaml")
    fn = app.functions["HelloWorldFunction"]
    assert fn.logical_id == "HelloWorldFunction"
    assert (fn.latest.runtime, fn.latest.handler) == ("python3.12", "hello_app.lambda_handler")
    assert fn.latest.code_dir == (fixtures / "hello_api" / "hello_world").resolve()
    assert (fn.latest.timeout_s, fn.latest.memory_mb, fn.latest.architectures) == (
        3,
        128,
        ("x86_64",),
    )
    assert fn.latest.version == LATEST
    # The API, its deployment, stage and permission, and the generated role: no warnings.
    assert app.warnings == ()
    assert app.source == fixtures / "hello_api" / "template.yaml"


def test_globals_mappings_conditions_and_layers(fixtures: Path) -> None:
    app = load_template(fixtures / "layered" / "template.yaml")
    assert sorted(app.functions) == ["ReportFunction", "dev-orders"]
    orders = app.functions["dev-orders"]
    assert orders.logical_id == "OrdersFunction"
    assert app.find_function("OrdersFunction") is orders
    config = orders.latest
    assert (config.runtime, config.timeout_s, config.memory_mb) == ("python3.12", 15, 256)
    assert config.description == "Takes orders"
    # Globals first, then the function's own layers, in order.
    assert [layer.arn for layer in config.layers] == [
        f"{ARN}:layer:CommonLayer:1",
        f"{ARN}:layer:dev-deps:1",
    ]
    assert [layer.logical_id for layer in config.layers] == ["CommonLayer", "DepsLayer"]
    assert config.layers[0].content_dir == (fixtures / "layered" / "layers" / "common").resolve()
    assert config.layers[0].compatible_runtimes == ("python3.12",)
    # Global variables merged with the function's; !Ref AWS::NoValue removed LOG_LEVEL.
    assert config.environment == {
        "STAGE": "dev",
        "TABLE_NAME": "OrdersTable",
        "REPORT_FUNCTION": "ReportFunction",
        "AUDIT": "off",
    }
    report = app.functions["ReportFunction"].latest
    assert report.environment == {
        "STAGE": "dev",
        "LOG_LEVEL": "DEBUG",
        "TABLE_NAME": "OrdersTable",
        "ORDERS_ARN": f"{ARN}:function:dev-orders",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:OrdersTable",
    }
    assert (report.architectures, report.ephemeral_storage_mb) == (("arm64",), 1024)
    assert app.functions["ReportFunction"].reserved_concurrency == 2
    assert set(app.layers) == {f"{ARN}:layer:CommonLayer:1", f"{ARN}:layer:dev-deps:1"}
    assert app.warnings == ("OrdersTable (AWS::DynamoDB::Table) is not served by fogbank",)


def test_parameter_overrides_change_names_mappings_and_conditions(fixtures: Path) -> None:
    app = load_template(
        fixtures / "layered" / "template.yaml", parameter_overrides={"Stage": "prod"}
    )
    orders = app.functions["prod-orders"].latest
    assert orders.memory_mb == 1024
    assert orders.environment["LOG_LEVEL"] == "ERROR"
    assert orders.environment["AUDIT"] == "on"
    assert orders.layers[1].arn == f"{ARN}:layer:prod-deps:1"
    assert app.warnings == (
        "OrdersTable (AWS::DynamoDB::Table) is not served by fogbank",
        "ErrorsAlarm (AWS::CloudWatch::Alarm) is not served by fogbank",
    )


def test_parameter_errors_name_the_parameter(fixtures: Path) -> None:
    path = fixtures / "layered" / "template.yaml"
    assert load_error(path, Stage="qa") == (
        f"{path}: parameter Stage: 'qa' is not one of the AllowedValues dev, staging, prod"
    )
    assert load_error(path, TableNamePrefix="Orders_") == (
        f"{path}: parameter TableNamePrefix: 'Orders_' does not match the AllowedPattern "
        "[a-z][a-z0-9-]* (lower-case letters, digits and dashes)"
    )


def test_canary_deployment_from_json(fixtures: Path) -> None:
    app = load_template(fixtures / "canary" / "template.json")
    payments = app.functions["PaymentsFunction"]
    assert list(payments.versions) == ["1"]
    assert payments.versions["1"] == payments.latest.published("1")
    assert payments.aliases == {"live": Alias("live", "1")}
    assert payments.provisioned_concurrency == {"live": 3}
    assert payments.streaming is True
    invoke = payments.event_invoke
    assert (invoke.maximum_retry_attempts, invoke.maximum_event_age_s) == (0, 120)
    assert invoke.on_success == Destination(f"{ARN}:function:AuditFunction", "Lambda")
    queue = "arn:aws:sqs:us-east-1:123456789012:PaymentsFunctionEventInvokeConfigOnFailureQueue"
    assert invoke.on_failure == Destination(queue, "SQS")
    assert app.functions["AuditFunction"].latest.environment == {
        "PAYMENTS": "PaymentsFunction:live"
    }
    assert app.functions["AuditFunction"].streaming is False
    # DeploymentPreference's CodeDeploy resources are read into the function's preference.
    assert payments.deployment_preference == DeploymentPreference(
        alias="live",
        config_name="Canary10Percent5Minutes",
        kind=ShiftKind.CANARY,
        percentage=10.0,
        interval_s=300.0,
    )
    assert app.functions["AuditFunction"].deployment_preference is None
    assert app.warnings == (
        f"PaymentsFunctionEventInvokeConfig: the OnFailure destination {queue} (SQS) "
        "is not delivered by fogbank",
        "PaymentsFunctionEventInvokeConfigOnFailureQueue (AWS::SQS::Queue) is not served by fogbank",
    )


def test_auto_publish_alias_from_a_parameter(fixtures: Path) -> None:
    path = fixtures / "canary" / "template.json"
    app = load_template(path, parameter_overrides={"AliasName": "blue"})
    assert set(app.functions["PaymentsFunction"].aliases) == {"blue"}
    assert app.functions["AuditFunction"].latest.environment == {
        "PAYMENTS": "PaymentsFunction:blue"
    }


def test_plain_cloudformation(fixtures: Path) -> None:
    directory = fixtures / "plain_cfn"
    app = load_template(directory / "template.yaml", identity=Identity("eu-west-1", "111122223333"))
    worker = app.functions["plain-worker"]
    assert worker.logical_id == "Worker"
    assert worker.latest.code_dir == (directory / "worker").resolve()
    assert worker.tenancy is TenancyMode.PER_TENANT
    assert [layer.arn for layer in worker.latest.layers] == [
        "arn:aws:lambda:eu-west-1:111122223333:layer:util:1"
    ]
    greeter = app.functions["Greeter"]
    assert greeter.latest.code_dir == (directory / ".fogbank" / "inline" / "Greeter").resolve()
    assert (
        (greeter.latest.code_dir / "index.py")
        .read_text(encoding="utf-8")
        .startswith("def handler(event, context):\n")
    )
    assert {v: c.description for v, c in greeter.versions.items()} == {"1": "first", "2": ""}
    assert greeter.aliases == {"live": Alias("live", "2", {"1": 0.25})}
    assert greeter.event_invoke.on_failure == Destination(
        "arn:aws:lambda:eu-west-1:111122223333:function:plain-worker", "Lambda"
    )
    assert app.warnings == ("WorkerRole (AWS::IAM::Role) is not served by fogbank",)


def test_inline_code_is_rewritten_only_when_it_changes(fixtures: Path) -> None:
    path = fixtures / "plain_cfn" / "template.yaml"
    code = load_template(path).functions["Greeter"].latest.code_dir / "index.py"
    os.utime(code, (1_000_000, 1_000_000))
    load_template(path)
    assert code.stat().st_mtime == 1_000_000
    path.write_text(path.read_text().replace('"hello "', '"hi "'))
    load_template(path)
    assert '"hi "' in code.read_text()


def test_sam_inline_code_and_default_code_uri(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        {SAM}
        Resources:
          Inline:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.14
              Handler: index.handler
              InlineCode: "def handler(event, context):\\n    return 1\\n"
          Here:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: provided.al2023
              Handler: bootstrap
        """,
    )
    app = load_template(path)
    inline = app.functions["Inline"].latest
    assert (
        inline.code_dir / "index.py"
    ).read_text() == "def handler(event, context):\n    return 1\n"
    # No CodeUri: the template's own directory, as `sam local` assumes.
    assert app.functions["Here"].latest.code_dir == tmp_path.resolve()


def test_tenancy_config_and_custom_runtime_without_handler(tmp_path: Path) -> None:
    path = sam_function(
        tmp_path,
        """\
        TenancyConfig:
          TenantIsolationMode: PER_TENANT
        """,
        extra="""\
        Custom:
          Type: AWS::Lambda::Function
          Properties:
            Runtime: provided.al2
            Code: src/
        """,
    )
    app = load_template(path)
    assert app.functions["Fn"].tenancy is TenancyMode.PER_TENANT
    # Only Python needs a handler (aws-sam-translator insists on one for its own functions).
    assert app.functions["Custom"].latest.handler == ""
    assert app.functions["Custom"].tenancy is TenancyMode.NONE


def test_layers_keep_their_order(tmp_path: Path) -> None:
    layer = "Type: AWS::Serverless::LayerVersion\n  Properties: {ContentUri: src/}"
    path = sam_function(
        tmp_path,
        "Layers: [!Ref B, !Ref A]\n",
        head="Globals:\n  Function:\n    Layers: [!Ref C]\n",
        extra=f"A:\n  {layer}\nB:\n  {layer}\nC:\n  {layer}\n",
    )
    layers = load_template(path).functions["Fn"].latest.layers
    assert [layer.name for layer in layers] == ["C", "B", "A"]


def test_function_name_property_and_logical_id(tmp_path: Path) -> None:
    path = sam_function(tmp_path, "FunctionName: !Sub '${AWS::StackName}-api'\n")
    app = load_template(path)
    assert list(app.functions) == ["fogbank-api"]
    assert app.find_function("Fn") is app.functions["fogbank-api"]


def test_environment_values_are_strings(tmp_path: Path) -> None:
    path = sam_function(
        tmp_path,
        """\
        Environment:
          Variables:
            COUNT: 3
            ENABLED: true
            RATIO: 0.5
        """,
    )
    env = load_template(path).functions["Fn"].latest.environment
    assert env == {"COUNT": "3", "ENABLED": "true", "RATIO": "0.5"}


def test_aws_include_of_local_files(tmp_path: Path) -> None:
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "functions.yaml").write_text(
        textwrap.dedent("""\
        Included:
          Type: AWS::Serverless::Function
          Properties:
            Runtime: python3.12
            Handler: app.handler
            CodeUri: src/
            Environment:
              Fn::Transform:
                Name: AWS::Include
                Parameters:
                  Location: env.yaml
        """)
    )
    (tmp_path / "snippets" / "env.yaml").write_text("Variables:\n  FROM: !Sub '${AWS::Region}'\n")
    path = sam_function(
        tmp_path,
        extra="""\
        Fn::Transform:
          Name: AWS::Include
          Parameters:
            Location: ./snippets/functions.yaml
        """,
    )
    app = load_template(path)
    assert app.functions["Included"].latest.environment == {"FROM": "us-east-1"}
    assert set(app.functions) == {"Fn", "Included"}


def test_aws_include_errors(tmp_path: Path) -> None:
    include = "Fn::Transform: {Name: AWS::Include, Parameters: {Location: %s}}\n"
    path = sam_function(tmp_path, extra=include % "s3://bucket/snippet.yaml")
    assert load_error(path) == (
        f"{path}: AWS::Include of s3://bucket/snippet.yaml is not supported; include a local file"
    )
    (tmp_path / "loop.yaml").write_text(include % "loop.yaml")
    path = sam_function(tmp_path, extra=include % "loop.yaml")
    assert load_error(path) == f"{path}: AWS::Include of loop.yaml includes itself"


def test_unserved_resources_warn_once_each(tmp_path: Path) -> None:
    path = sam_function(
        tmp_path,
        transform="Transform: [AWS::Serverless-2016-10-31, AWS::LanguageExtensions]\n",
        extra="""\
        MyTable:
          Type: AWS::Serverless::SimpleTable
        Queue:
          Type: AWS::SQS::Queue
        Role:
          Type: AWS::IAM::Role
          Properties: {AssumeRolePolicyDocument: {}}
        Nested:
          Type: AWS::Serverless::Application
          Properties:
            Location: {ApplicationId: arn:aws:serverlessrepo:us-east-1:1:applications/x, SemanticVersion: 1.0.0}
        Image:
          Type: AWS::Serverless::Function
          Properties: {PackageType: Image, ImageUri: repo/image:latest}
        """,
    )
    warnings = load_template(path).warnings
    # Template order after SAM has rewritten it; each resource once; no SAM-generated role.
    assert sorted(warnings) == [
        "Image is a container image function; fogbank cannot run it",
        "MyTable (AWS::DynamoDB::Table) is not served by fogbank",
        "Nested (AWS::CloudFormation::Stack) is not served by fogbank",
        "Queue (AWS::SQS::Queue) is not served by fogbank",
        "Role (AWS::IAM::Role) is not served by fogbank",
        "transform AWS::LanguageExtensions is not applied by fogbank",
    ]


def test_serverless_resources_without_the_transform(tmp_path: Path) -> None:
    path = write(tmp_path, "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n")
    assert load_template(path).warnings == (
        "Fn (AWS::Serverless::Function) is not served by fogbank "
        "(the template has no Transform: AWS::Serverless-2016-10-31)",
    )


def test_a_malformed_handler_is_not_a_load_error(tmp_path: Path) -> None:
    path = sam_function(tmp_path, "Handler: no-dots-here\n")
    assert load_template(path).functions["Fn"].latest.handler == "no-dots-here"


RUNTIMES = ", ".join(SUPPORTED_RUNTIMES)


@pytest.mark.parametrize(
    ("props", "where", "message"),
    [
        (
            "Runtime: nodejs20.x\n",
            "Runtime",
            f"runtime nodejs20.x is not supported (use one of {RUNTIMES})",
        ),
        ("Runtime: null\n", "Runtime", "Runtime is required"),
        ("Handler: null\n", "Handler", "Handler is required"),
        ("Timeout: 901\n", "Timeout", "Timeout 901 is outside 1-900 seconds"),
        ("Timeout: 0\n", "Timeout", "Timeout 0 is outside 1-900 seconds"),
        ("Timeout: soon\n", "Timeout", "Timeout must be a whole number, got 'soon'"),
        ("MemorySize: 64\n", "MemorySize", "MemorySize 64 is outside 128-10240 MB"),
        ("MemorySize: 10241\n", "MemorySize", "MemorySize 10241 is outside 128-10240 MB"),
        (
            "TenancyConfig: {TenantIsolationMode: SHARED}\n",
            "TenancyConfig.TenantIsolationMode",
            "unknown mode SHARED",
        ),
        (
            "Layers: [arn:aws:lambda:us-east-1:123456789012:layer:ext:3]\n",
            "Layers",
            "layer arn:aws:lambda:us-east-1:123456789012:layer:ext:3 is not defined in this template",
        ),
        (
            "Layers: [!Ref L, !Ref L, !Ref L, !Ref L, !Ref L, !Ref L]\n",
            "Layers",
            "6 layers given; a function can use at most 5",
        ),
        (
            "CodeUri: s3://real-bucket/code.zip\n",
            "CodeUri",
            "S3 code is not supported, point CodeUri at a local directory",
        ),
        (
            "CodeUri: {Bucket: real-bucket, Key: code.zip}\n",
            "CodeUri",
            "S3 code is not supported, point CodeUri at a local directory",
        ),
        (
            "CodeUri: !Sub '${AWS::Region}'\n",
            "CodeUri",
            "CodeUri must be a local directory path, not {'Fn::Sub': '${AWS::Region}'}",
        ),
        (
            "Events: {Get: {Type: Api, Properties: {Path: /x}}}\n",
            "Events.Get.Method",
            "Property 'Method' is required.",
        ),
        (
            "Bogus: 1\n",
            "Bogus",
            "property Bogus not defined for resource of type AWS::Serverless::Function",
        ),
        (
            "Environment: {Variables: {X: !Ref Nope}}\n",
            "Environment.Variables.X",
            "Ref to Nope: no such parameter or resource",
        ),
        (
            "Environment: {Variables: {BIG: " + "x" * 4094 + "}}\n",
            "Environment.Variables",
            "variables take 4097 bytes; Lambda allows 4096 in all",
        ),
    ],
)
def test_function_errors_name_file_resource_and_property(
    tmp_path: Path, props: str, where: str, message: str
) -> None:
    layer = "L:\n  Type: AWS::Serverless::LayerVersion\n  Properties: {ContentUri: src/}\n"
    path = sam_function(tmp_path, props, extra=layer)
    assert load_error(path) == f"{path}: resource Fn: property {where}: {message}"


def test_code_directories_must_exist(tmp_path: Path) -> None:
    path = sam_function(
        tmp_path,
        extra="Lib:\n  Type: AWS::Serverless::LayerVersion\n  Properties: {ContentUri: lib/}\n",
    )
    assert load_error(path) == (
        f"{path}: resource Lib: property ContentUri: directory lib/ does not exist ({tmp_path.resolve() / 'lib'})"
    )
    (tmp_path / "lib").write_text("a file")
    assert load_error(path) == (
        f"{path}: resource Lib: property ContentUri: directory lib/ is not a directory ({tmp_path.resolve() / 'lib'})"
    )
    globals_path = sam_function(tmp_path, head="Globals:\n  Function:\n    CodeUri: gone/\n")
    assert load_error(globals_path).startswith(
        f"{globals_path}: resource Globals: property Function.CodeUri: directory gone/ does not exist"
    )


def test_cloudformation_errors(tmp_path: Path) -> None:
    def cfn(props: str, extra: str = "", runtime: str = "python3.12") -> Path:
        return write(
            tmp_path,
            "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n"
            f"      Runtime: {runtime}\n      Handler: index.handler\n"
            + textwrap.indent(props, " " * 6)
            + extra,
        )

    path = cfn("Code: src\n", runtime="python3.8")
    assert load_error(path) == (
        f"{path}: resource Fn: property Runtime: runtime python3.8 is not supported (use one of {RUNTIMES})"
    )
    path = cfn("Code: src\n", runtime="null")
    assert load_error(path) == (
        f"{path}: resource Fn: property Runtime: Runtime is required (use one of {RUNTIMES})"
    )
    path.write_text(
        path.read_text()
        .replace("null", "python3.9")
        .replace("Handler: index.handler", "Handler: ''")
    )
    assert (
        load_error(path)
        == f"{path}: resource Fn: property Handler: Handler is required for Python runtimes"
    )
    path = cfn("Code: {S3Bucket: real-bucket, S3Key: code.zip}\n")
    assert load_error(path) == (
        f"{path}: resource Fn: property Code: S3 code is not supported, point Code at a local directory"
    )
    path = cfn("Code: {ZipFile: echo}\n", runtime="provided.al2")
    assert (
        load_error(path)
        == f"{path}: resource Fn: property Code.ZipFile: inline code runs only on Python runtimes"
    )
    path = cfn(
        "FunctionName: same\nCode: src\n",
        "  Other:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      {FunctionName: same, Runtime: python3.12, Handler: a.b, Code: src}\n",
    )
    assert (
        load_error(path)
        == f"{path}: resource Other: property FunctionName: function name same is already used by Fn"
    )
    path = cfn(
        "Code: src\n",
        "  Live:\n    Type: AWS::Lambda::Alias\n    Properties:\n"
        "      {FunctionName: !Ref Fn, Name: live, FunctionVersion: '4'}\n",
    )
    assert (
        load_error(path)
        == f"{path}: resource Live: property FunctionVersion: version 4 is not published"
    )


def test_template_level_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "- a list\n")
    assert load_error(path) == f"{path}: a template must be a mapping of sections (Resources, ...)"
    path = write(tmp_path, "Description: nothing\n")
    assert load_error(path) == f"{path}: the template has no Resources"
    path = write(tmp_path, "Resources:\n  Fn:\n    Properties: {}\n")
    assert load_error(path) == f"{path}: resource Fn: every resource needs a Type"
    path = write(tmp_path, "Resources:\n  Fn:\n    Type: [x\n")
    assert load_error(path).startswith(f"{path}:4: invalid YAML: ")
    path = write(tmp_path, "Parameters:\n  Bucket: {Type: String}\nResources: {}\n")
    assert (
        load_error(path)
        == f"{path}: parameter Bucket has no value: give it a Default or pass an override"
    )
    assert load_error(tmp_path / "missing.yaml") == (
        f"{tmp_path / 'missing.yaml'}: cannot read the file: No such file or directory"
    )


def test_unknown_override_is_a_warning(tmp_path: Path) -> None:
    path = sam_function(tmp_path)
    app = load_template(path, parameter_overrides={"Stage": "prod"})
    assert app.warnings == ("parameter override Stage matches no parameter",)
    assert isinstance(app, App)


def test_load_template_is_exported() -> None:
    import fogbank.model

    assert fogbank.model.load_template is load_template
    assert "load_template" in fogbank.model.__all__
