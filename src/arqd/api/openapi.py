"""The OpenAPI document: response declarations for routes, and the finishing touches.

Routes return orjson-rendered ``Response`` objects for speed, so their answers are declared
here (``ok``, ``errors``) rather than inferred. The finished document also says that every
path but the public ones needs an API key, that errors are problem+json, and that any
path but probes and metrics may be rate limited (429) or shed under load (503).

``/docs`` (Swagger UI) loads its script and style from the app itself, from the assets the
fastapi-offline wheel ships: no CDN, so it works offline. There is no ``/redoc``: ReDoc's
page fetches its logo from the vendor's CDN whatever its options.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from arqd.api.problems import MEDIA_TYPE
from arqd.api.ratelimit import EXEMPT_PATHS
from arqd.api.schemas import ProblemOut

REF = "#/components/schemas/{model}"
DOCS_URL = "/docs"
DOCS_ASSETS = "/docs/assets"  # swagger-ui-bundle.js, swagger-ui.css, favicon.png
_ERROR_TEXT = {
    400: "The body is not valid JSON",
    401: "No API key, or a wrong one",
    404: "No such task (it may have expired), or no such breaker",
    409: "The task's status does not allow this",
    413: "The body or the payload is over the size limit",
    415: "The body is not declared as JSON",
    422: "A field is invalid; `errors` names it",
    429: "Over REQUESTS_PER_MINUTE; retry after Retry-After seconds",
    503: "Redis is unreachable, or the server is overloaded; retry after Retry-After seconds",
}
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "API_KEYS entry"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def ok(
    status: int, model: type[BaseModel], description: str, location: bool = False
) -> dict[int | str, dict[str, Any]]:
    """A success response for a route's ``responses=``."""
    declared: dict[str, Any] = {"model": model, "description": description}
    if location:
        declared["headers"] = {
            "Location": {"description": "The task's URL", "schema": {"type": "string"}}
        }
    return {status: declared}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problem responses for a route's ``responses=``."""
    return {status: _problem_response(status) for status in statuses}


def _problem_response(status: int) -> dict[str, Any]:
    schema = {"$ref": REF.format(model="ProblemOut")}
    declared: dict[str, Any] = {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": schema}},
    }
    if status in (429, 503):
        declared["headers"] = {"Retry-After": _header("Seconds to wait")}
    if status == 429:
        declared["headers"] |= {
            "RateLimit-Limit": _header("Requests per minute allowed"),
            "RateLimit-Remaining": _header("Requests left now"),
            "RateLimit-Reset": _header("Seconds until the whole budget is back"),
        }
    return declared


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _finish(document: dict[str, Any], public_paths: frozenset[str]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemOut.model_json_schema(ref_template=REF)
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemOut"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = _SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_response(422)
            if path not in public_paths:
                operation["security"] = [{name: []} for name in _SECURITY_SCHEMES]
                responses["401"] = _problem_response(401)
            if path not in EXEMPT_PATHS:  # the rate limit and load shedding
                responses["429"] = _problem_response(429)
                responses.setdefault("503", _problem_response(503))
    return document


def install(app: FastAPI, public_paths: frozenset[str]) -> None:
    """Replace ``app.openapi`` with one that finishes the generated document (once), and
    serve ``/docs`` to browse it (the app is made with ``docs_url=None, redoc_url=None``)."""
    _install_document(app, public_paths)
    _install_pages(app)


def _install_document(app: FastAPI, public_paths: frozenset[str]) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = _finish(document, public_paths)
        return app.openapi_schema

    setattr(app, "openapi", build)  # noqa: B010 (mypy refuses assigning to a method)


def _install_pages(app: FastAPI) -> None:
    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = f"{request.scope.get('root_path', '')}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from an online validator
        )
