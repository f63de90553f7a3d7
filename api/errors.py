"""The error bodies of the API as the OpenAPI document describes them.

Every refusal is ``{"detail": "<field>: <rule>"}``; a request that breaks a field's rule
(422) also carries ``errors``: one item per broken rule, without the input. ``openapi``
builds the document with these shapes instead of FastAPI's ``HTTPValidationError`` (which
is not what we send) and with the agency answer's schema as a resolvable component.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """A refusal: what was refused and why."""

    detail: str = Field(description="'<field>: <rule>'")


class ErrorItem(BaseModel):
    loc: list[str] = Field(description="where: body, query, path or header, then the field")
    msg: str = Field(description="the rule broken")
    type: str = Field(description="the kind of error (pydantic's error type)")
    ctx: dict[str, Any] | None = Field(default=None, description="the rule's parameters")


class FieldErrorItem(BaseModel):
    """A field of a form checked by the domain layer (the 363н application, the ИПРА
    extract, the consent): its path, the rule's code and the message for people (Russian)."""

    field: str = Field(description="the field's path, e.g. person.snils")
    rule: str = Field(description="the rule's code, e.g. snils_check")
    message: str = Field(description="the message for people, in Russian")


class ValidationErrorBody(BaseModel):
    """A field breaks its rule (422): ``detail`` names it; ``errors`` lists each broken rule
    (present when the request did not match its schema, or a form's fields broke the
    domain layer's rules — then each item is a :class:`FieldErrorItem`)."""

    detail: str = Field(description="'<field>: <rule>[; <field>: <rule> …]'")
    errors: list[ErrorItem | FieldErrorItem] | None = None


_DESCRIPTIONS = {
    400: "the body is not (strict) JSON; `detail` names the place",
    401: "no credentials, or they are not valid",
    403: "the caller may not do this (role, region, or the built-in administrator's scope)",
    404: "the thing named in the path or the body does not exist (or is not visible)",
    409: "the action conflicts with the current state (or data) of the thing",
    413: "the body is too large",
    415: "the body is not JSON in UTF-8 (`content-type: application/json`)",
    422: "a field breaks its rule; `detail` names the field and the rule",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that refuses with these status codes."""
    return {code: {"model": ValidationErrorBody if code == 422 else ErrorBody,
                   "description": _DESCRIPTIONS[code]} for code in codes}


def _components(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema and its definitions, referenced as components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, model.__name__: schema}


def _reference_components(schema: dict[str, Any]) -> None:
    """A property validated by hand (``dict[str, Any]`` in the model, so that the domain
    layer reports every field at once) but marked ``x-component: Name`` is published with
    that component's schema (nullable if the property may be null)."""
    for name, prop in list(schema.get("properties", {}).items()):
        component = prop.get("x-component")
        if component is None:
            continue
        ref = {"$ref": f"#/components/schemas/{component}"}
        nullable = any(alt.get("type") == "null" for alt in prop.get("anyOf", []))
        schema["properties"][name] = {
            **({"anyOf": [ref, {"type": "null"}]} if nullable else ref),
            **{k: prop[k] for k in ("description", "default", "title") if k in prop}}


def openapi(app: FastAPI, extra_models: tuple[type[BaseModel], ...] = ()) -> dict[str, Any]:
    """The OpenAPI document: FastAPI's, with our 422 shape everywhere (FastAPI documents its
    own ``HTTPValidationError`` where a route did not say) and ``extra_models`` (schemas that
    operations reference by hand, e.g. the webhook's raw body) as components."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, webhooks=app.webhooks.routes)
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    ours = {"$ref": "#/components/schemas/ValidationErrorBody"}
    for group in ("paths", "webhooks"):
        for item in doc.get(group, {}).values():
            for op in item.values():
                resp = op.get("responses", {}).get("422")
                if resp is None:
                    continue
                content = resp.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    content["schema"] = ours
                    resp["description"] = _DESCRIPTIONS[422]
    models: tuple[type[BaseModel], ...] = (ValidationErrorBody, *extra_models)
    for model in models:
        schemas.update(_components(model))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for schema in list(schemas.values()):
        _reference_components(schema)
    app.openapi_schema = doc
    return doc
