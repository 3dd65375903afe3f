"""The links of the served document (openapi/links.py): each names an operation that exists,
parameters that operation has, and values its source answer holds; schemathesis reads them all;
and followed on real answers, each leads where it says."""

from __future__ import annotations

from typing import Any

import schemathesis

from service.openapi import links
from service.openapi.document import document
from tests.support import claim

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in root["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        found: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def _schema_at(root: dict[str, Any], schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The schema of the value at the JSON pointer `pointer` of a value of `schema`."""
    for part in pointer.removeprefix("/").split("/"):
        schema = _resolve(root, schema)
        assert part in schema.get("properties", {}), (pointer, part)
        assert part in schema.get("required", ()), (pointer, part)  # always there
        schema = schema["properties"][part]
    return _resolve(root, schema)


def _every_link():
    root = document()
    operations = _operations(root)
    for source_id, source in operations.items():
        for status, response in source["responses"].items():
            for name, link in response.get("links", {}).items():
                yield root, operations, source_id, response, status, name, link


def test_every_link_names_an_operation_its_parameters_and_values_its_answer_holds():
    seen = 0
    for root, operations, source_id, response, status, name, link in _every_link():
        label = f"{source_id} {status} {name}"
        target = operations[link["operationId"]]
        answer = _resolve(root, response["content"]["application/json"]["schema"])
        parameters = [_resolve(root, p) for p in target.get("parameters", [])]
        declared = {(p["in"], p["name"]) for p in parameters}
        for parameter, expression in link.get("parameters", {}).items():
            where, _, parameter_name = parameter.partition(".")
            assert (where, parameter_name) in declared, label
            pointer = expression.removeprefix("$response.body#")
            assert pointer != expression, label
            assert _schema_at(root, answer, pointer).get("type") == "string", label
        for field, value in link.get("requestBody", {}).items():
            body = _resolve(root, target["requestBody"]["content"]["application/json"]["schema"])
            assert field in body["properties"], label
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    _schema_at(root, answer, item.removeprefix("$response.body#"))
        seen += 1
    assert seen == sum(len(table) for table in links.links().values())


def test_schemathesis_reads_every_link_as_a_transition():
    schema = schemathesis.openapi.from_dict(document())
    schema.config.phases.stateful.inference.algorithms = []  # the document's links only
    machine = schema.as_state_machine()
    followed = {name for name in dir(machine) if "___" in name and not name.startswith("RANDOM")}
    assert len(followed) == sum(len(table) for table in links.links().values())


def _follow(client, link: dict[str, Any], answer: dict[str, Any], json: Any = None):
    """The call `link` describes, with the values it takes from `answer`."""
    [(path, method)] = [
        (path, method)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS and operation["operationId"] == link["operationId"]
    ]
    values = {}
    for parameter, expression in link["parameters"].items():
        value: Any = answer
        for part in expression.removeprefix("$response.body#/").split("/"):
            value = value[part]
        values[parameter] = value
    headers = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("header.")}
    url = path.replace("{id}", values["path.id"])
    return client.request(method.upper(), url, headers=headers, json=json)


def test_followed_on_real_answers_each_link_leads_where_it_says(server):
    table = links.links()
    with server.client("alice", "jobs:read jobs:write worker") as client:
        created = client.post("/api/v1/jobs", json={"type": "link.t"}).json()
        on_job = table[("createJob", "201")]
        assert _follow(client, on_job["GetJob"], created).status_code == 200
        assert _follow(client, on_job["ListJobEvents"], created).status_code == 200
        assert _follow(client, on_job["UpdateJob"], created, {"starred": True}).status_code == 200
        assert _follow(client, on_job["ReplayJob"], created).status_code == 201

        claimed = claim(client, [created["type"]])  # what the ClaimJob link asks for
        assert claimed is not None and claimed["job"]["id"] == created["id"]
        on_lease = table[("claimJob", "200")]
        assert _follow(client, on_lease["Heartbeat"], claimed).status_code == 200
        progress = {"percent": 50}
        assert _follow(client, on_lease["ReportProgress"], claimed, progress).status_code == 200
        log = {"message": "m"}
        assert _follow(client, on_lease["AppendLogs"], claimed, log).status_code == 200
        done = _follow(client, on_lease["SucceedJob"], claimed, {"result": 1})
        assert done.status_code == 200, done.text

        assert (
            _follow(client, table[("succeedJob", "200")]["DeleteJob"], done.json()).status_code
            == 204
        )
