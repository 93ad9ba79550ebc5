"""What every operation of the store API's OpenAPI schema shares, added by one drf-spectacular
postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) instead of on each view:

- the one error body of apps.core.errors (`Error`) on every 4xx answer: 400 (input; any query
  or path can be refused, apps.core.middleware.RequestInputMiddleware), 401, 403, 404, 429
  (with Retry-After), and `4XX` for the rest (402 unpaid, 405, 409 conflicts, 413, 415);
- a tag per area of the API, from the path, for operations that did not name their own;
- the secret-key scheme listed first, and a description on success answers without one.

Operations that already document one of these statuses keep theirs.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error body of every API error answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable (e.g. `invalid`, "
                    "`invalid_api_key`, `missing_scope`, `not_found`, `throttled`).",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "fields": {
                    "type": "object",
                    "description": "Input problems by field name (empty otherwise).",
                    "additionalProperties": {},
                },
                "retry_after": {
                    "type": "integer",
                    "description": "429 only: seconds to wait (also the Retry-After header).",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}


def _example(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


ERROR_RESPONSES: dict[str, tuple[str, dict[str, Any]]] = {
    "400": (
        "Invalid input; `fields` names each field.",
        _example("invalid", "Invalid input in: k.", {"k": ["Must be at most 100."]}),
    ),
    "401": (
        "No, a malformed, unknown, revoked or expired API key (or the `Token` scheme).",
        _example("invalid_api_key", "Invalid API key."),
    ),
    "403": (
        "The key lacks a scope (or a publishable key's origin or user token is refused).",
        _example("missing_scope", "This API key lacks the scope: manage."),
    ),
    "404": ("No such resource.", _example("not_found", "Not found.")),
    "429": (
        "Over a rate limit or quota; retry after `Retry-After` seconds.",
        {
            "error": {
                "code": "throttled",
                "message": "Rate limit of this API key exceeded; retry in 1s.",
                "fields": {},
                "retry_after": 1,
            }
        },
    ),
    "4XX": (
        "Any other refusal (402 unpaid, 405, 409 conflict, 413 too large, 415), same body.",
        _example("conflict", "This API key is already revoked."),
    ),
}

# Path prefix (after /api/v1/) → tag; the first match wins.
AREA_TAGS: tuple[tuple[str, str], ...] = (
    ("recommendations/models", "Models"),
    ("recommendations/batch", "Batch jobs"),
    ("recommendations", "Recommendations"),
    ("items", "Catalog"),
    ("events", "Events"),
    ("users", "Shoppers"),
    ("experiments", "Experiments"),
    ("analytics", "Analytics"),
    ("placements", "Placements"),
    ("connectors", "Connectors"),
    ("api-keys", "API keys"),
    ("auth", "API keys"),
)
TAG_DESCRIPTIONS = {
    "Catalog": "Items: create, replace, list, hide.",
    "Events": "Shopper and session events (views, carts, purchases, ratings, clicks...).",
    "Shoppers": "Shopper profiles, history, GDPR export and erasure.",
    "Recommendations": "The serving endpoints: lists for shoppers, sessions, items, trending.",
    "Models": "Training, activation and rollback of the store's models.",
    "Batch jobs": "Personal lists for many shoppers at once, as files.",
    "Experiments": "A/B tests between models and strategies.",
    "Analytics": "Recommendation outcomes: CTR, conversions, revenue.",
    "Placements": "Named places in the storefront with their strategy and rules.",
    "API keys": "The store's API keys.",
    "Connectors": "WooCommerce and Shopify webhooks.",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
SUCCESS_DESCRIPTIONS = {
    "200": "OK",
    "201": "Created",
    "202": "Accepted: done or queued, as the body says.",
    "204": "Done; no body.",
}


def area_tag(path: str) -> str:
    rest = path.removeprefix("/api/v1/").lstrip("/")
    for prefix, tag in AREA_TAGS:
        if rest.startswith(prefix):
            return tag
    return rest.split("/", 1)[0].replace("-", " ").capitalize() or "API"


def _error_response(description: str, example: dict[str, Any], status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"},
                "examples": {"error": {"value": example}},
            }
        },
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        }
    return response


def postprocess_errors_and_tags(result, generator, request, public):
    """drf-spectacular postprocessing hook: error responses and area tags (module docstring)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    used_tags: set[str] = set()
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            if operation.get("tags") in (None, [], ["v1"], ["api"]):
                operation["tags"] = [area_tag(path)]
            used_tags.update(operation["tags"])
            # Secret keys first: the scheme most callers use ("Authorize" lists it first too).
            operation.get("security", []).sort(key=lambda requirement: "ApiKey" not in requirement)
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if not response.get("description") and status in SUCCESS_DESCRIPTIONS:
                    response["description"] = SUCCESS_DESCRIPTIONS[status]
            for status, (description, example) in ERROR_RESPONSES.items():
                if status not in responses:
                    responses[status] = _error_response(description, example, status)
    result["tags"] = [
        {"name": tag, "description": TAG_DESCRIPTIONS[tag]}
        if tag in TAG_DESCRIPTIONS
        else {"name": tag}
        for tag in sorted(used_tags)
    ]
    return result
