"""Reading ``template.yaml``: CloudFormation tags parsed properly, intrinsics resolved for local use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

LOCAL_STACK_NAME = "studio-local"
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A SafeLoader that reads ``!Ref x`` as ``{"Ref": x}`` and ``!Sub s`` as ``{"Fn::Sub": s}``."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as fh:
        doc: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    return doc


@dataclass
class HttpRoute:
    method: str
    path: str
    function: str
    regex: re.Pattern[str]
    params: list[str]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    properties: dict[str, Any]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def module_path(self) -> Path:
        return self.code_uri / (self.handler.rsplit(".", 1)[0] + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


class Template:
    """The parts of the template the local stack needs, with local names for every resource."""

    def __init__(self, path: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> None:
        self.doc = load_template(path)
        self.resources: dict[str, dict[str, Any]] = self.doc["Resources"]
        self.parameters = {k: str(v.get("Default", "")) for k, v in self.doc.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.physical: dict[str, str] = {}

    # -- resources by type
    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def functions(self) -> dict[str, FunctionSpec]:
        out = {}
        for logical_id, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            out[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=ROOT / props["CodeUri"],
                handler=props["Handler"],
                properties=props,
                events=props.get("Events", {}) or {},
            )
        return out

    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for fn in self.functions().values():
            for event in fn.events.values():
                if event["Type"] != "HttpApi":
                    continue
                path = event["Properties"]["Path"]
                method = event["Properties"]["Method"].upper()
                params = re.findall(r"{([^}+]+)\+?}", path)
                pattern = re.sub(r"{[^}+]+\+}", "(.+)", path)
                pattern = re.sub(r"{[^}]+}", "([^/]+)", pattern)
                routes.append(HttpRoute(method, path, fn.logical_id, re.compile(f"^{pattern}$"), params))
        # Static segments win over parameters, as in API Gateway.
        routes.sort(key=lambda r: (r.path.count("{"), -len(r.path)))
        return routes

    def globals_environment(self) -> dict[str, Any]:
        return dict(self.doc.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))

    def function_environment(self, fn: FunctionSpec) -> dict[str, str]:
        env = self.globals_environment()
        env.update(fn.properties.get("Environment", {}).get("Variables", {}) or {})
        return {k: str(self.resolve(v)) for k, v in env.items()}

    # -- intrinsics, for local values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::Sub":
                return self._sub(arg)
            if name == "Fn::GetAtt":
                return self._get_att(*arg)
            if name == "Fn::If":
                return value  # conditions are not evaluated locally
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": LOCAL_STACK_NAME,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Region": LOCAL_REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"no local value for Ref {name}")

    def _sub(self, arg: Any) -> str:
        text = arg if isinstance(arg, str) else arg[0]
        return re.sub(r"\${([^}]+)}", lambda m: self._sub_name(m.group(1)), text)

    def _sub_name(self, name: str) -> str:
        if "." in name:
            return self._get_att(*name.split(".", 1))
        return self._ref(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        res = self.resources[logical_id]
        physical = self.physical.get(logical_id, logical_id)
        if res["Type"] == "AWS::SQS::Queue":
            name = physical.rsplit("/", 1)[-1]
            return {"Arn": f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{name}", "QueueName": name}[attribute]
        if res["Type"] == "AWS::DynamoDB::Table":
            arn = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{physical}"
            return {"Arn": arn, "StreamArn": self.physical.get(f"{logical_id}.StreamArn", arn)}[attribute]
        raise KeyError(f"no local value for GetAtt {logical_id}.{attribute}")
