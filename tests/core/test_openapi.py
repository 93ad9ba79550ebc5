"""The store API's OpenAPI schema (issue 17): Bearer API-key schemes Swagger can authorize
with, the one error body on every 4xx, a tag per area, paginated lists as served, prices as
strings, and the serving endpoints' parameters and bodies."""

import orjson
import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema() -> dict:
    generator = SchemaGenerator(urlconf=settings.ROOT_URLCONF)
    return orjson.loads(OpenApiJsonRenderer().render(generator.get_schema(public=True)))


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_every_operation_documents_the_error_body_on_every_4xx(schema):
    for label, operation in _operations(schema):
        responses = operation["responses"]
        for status in ("400", "401", "403", "404", "429", "4XX"):
            assert status in responses, (label, status)
        body = responses["401"]["content"]["application/json"]
        assert body["schema"] == ERROR_REF, label
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message", "fields"]
    assert "Retry-After" in schema["paths"]["/api/v1/items/"]["get"]["responses"]["429"]["headers"]


def test_every_operation_has_an_area_tag_and_an_api_key_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "http"
    assert schemes["ApiKey"]["scheme"] == "bearer"
    assert schemes["PublishableKey"]["scheme"] == "bearer"
    area_tags = {tag["name"] for tag in schema["tags"]}
    for label, operation in _operations(schema):
        assert operation["tags"] != ["v1"], label
        assert set(operation["tags"]) <= area_tags, label
        if "/connectors/" not in label:  # platform webhooks: signed by the shop, no key
            assert {"ApiKey": []} in operation["security"], label
    by_path = dict(_operations(schema))
    assert by_path["GET /api/v1/items/"]["tags"] == ["Catalog"]
    assert by_path["POST /api/v1/events/bulk"]["tags"] == ["Events"]
    assert by_path["POST /api/v1/recommendations/models/train"]["tags"] == ["Models"]
    assert by_path["GET /api/v1/recommendations/trending"]["tags"] == ["Recommendations"]


def test_the_item_list_is_documented_as_the_page_it_is_and_prices_as_strings(schema):
    page_ref = schema["paths"]["/api/v1/items/"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    page = schema["components"]["schemas"][page_ref.rsplit("/", 1)[-1]]
    item = schema["components"]["schemas"]["ItemOutput"]

    assert sorted(page["properties"]) == ["next", "previous", "results"]
    assert page["properties"]["results"]["items"] == {"$ref": "#/components/schemas/ItemOutput"}
    assert item["properties"]["price"]["type"] == "string"
    assert item["properties"]["price"]["format"] == "decimal"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/recommendations/users/{user_id}", {"user_id", "exclude_seen"}),
        ("/api/v1/recommendations/users/{user_id}/buy-again", {"user_id"}),
        ("/api/v1/recommendations/sessions/{session_id}", {"session_id", "exclude_seen"}),
        ("/api/v1/recommendations/items/{item_id}/similar", {"item_id"}),
        ("/api/v1/recommendations/items/{item_id}/bought-together", {"item_id"}),
        ("/api/v1/recommendations/trending", set()),
    ],
)
def test_serving_endpoints_document_their_parameters_and_list(schema, path, extra):
    operation = schema["paths"][path]["get"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    body = operation["responses"]["200"]["content"]["application/json"]

    assert {"k", "category", "in_stock"} | extra <= parameters
    assert body["schema"] == {"$ref": "#/components/schemas/RecommendationList"}
    assert set(body["examples"]["AList"]["value"]) == {
        "recommendation_id",
        "model_version",
        "strategy",
        "items",
    }
    assert "recommendation_id" in operation["description"]
    assert ("X-ShelfSense-User-Token" in parameters) == ("users/" in path)
    assert {"PublishableKey": []} in operation["security"]


def test_the_docs_page_and_schema_are_served_on_a_store_host(alpha, store_client):
    page = store_client(alpha).get("/api/docs/")
    served = store_client(alpha).get("/api/schema/", {"format": "json"})

    assert page.status_code == 200
    assert b"persistAuthorization" in page.content
    assert served.status_code == 200
    assert "ApiKey" in served.json()["components"]["securitySchemes"]


def test_a_key_as_swagger_sends_it_is_accepted(alpha, store_client):
    """What "Try it out" sends after "Authorize": the key as a Bearer token."""
    _, key = api_key_for(alpha, scopes=("ingest",))

    response = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/items/")

    assert response.status_code == 200
    assert sorted(response.json()) == ["next", "previous", "results"]


# --- placements and batch jobs (issue 17 item 4): described, tagged, with examples ----------
PLACEMENT_OPERATIONS = [
    ("get", "/api/v1/placements/"),
    ("post", "/api/v1/placements/"),
    ("get", "/api/v1/placements/{name}"),
    ("put", "/api/v1/placements/{name}"),
    ("delete", "/api/v1/placements/{name}"),
]
BATCH_OPERATIONS = [
    ("get", "/api/v1/recommendations/batch"),
    ("post", "/api/v1/recommendations/batch"),
    ("get", "/api/v1/recommendations/batch/{job_id}"),
    ("post", "/api/v1/recommendations/batch/{job_id}/cancel"),
    ("get", "/api/v1/recommendations/batch/{job_id}/failures"),
]


def _examples(operation: dict, status: str | None = None) -> dict:
    """The request body's examples, or those of the answer with that status."""
    holder = operation["requestBody"] if status is None else operation["responses"][status]
    return holder["content"]["application/json"].get("examples", {})


@pytest.mark.parametrize(
    ("method", "path", "tag"),
    [(*operation, "Placements") for operation in PLACEMENT_OPERATIONS]
    + [(*operation, "Batch jobs") for operation in BATCH_OPERATIONS],
)
def test_placement_and_batch_operations_are_described_tagged_and_exemplified(
    schema, method, path, tag
):
    operation = schema["paths"][path][method]
    successes = [status for status in operation["responses"] if status.startswith("2")]

    assert operation["tags"] == [tag]
    assert operation["summary"]
    assert len(operation["description"]) > 60
    for parameter in operation.get("parameters", []):
        assert parameter.get("description"), (parameter["name"], parameter["in"])
    if method in ("post", "put") and "requestBody" in operation:
        assert _examples(operation), "request example"
    for status in successes:
        if "content" in operation["responses"][status]:
            assert _examples(operation, status), f"{status} example"
    if method == "delete":
        assert successes == ["204"]


def test_path_parameters_of_placements_batch_jobs_and_sessions_are_described(schema):
    def path_parameter(path: str, method: str = "get") -> dict:
        parameters = schema["paths"][path][method]["parameters"]
        return next(p for p in parameters if p["in"] == "path")

    session = path_parameter("/api/v1/recommendations/sessions/{session_id}")
    job = path_parameter("/api/v1/recommendations/batch/{job_id}/cancel", "post")
    name = path_parameter("/api/v1/placements/{name}", "put")

    assert session["name"] == "session_id"
    assert "`session_id`" in session["description"]
    assert "1-128 printable characters" in session["description"]
    assert session["schema"] == {"type": "string", "pattern": r"^[\s\S]+$"}
    assert job["schema"] == {"type": "string", "format": "uuid"}
    assert "created" in job["description"]
    assert "`placement` parameter" in name["description"]


def test_the_documented_placement_with_three_rules_is_what_the_api_answers(
    schema, alpha, store_client
):
    """The examples are true: the request example is accepted, and the answer is the
    documented one (rules in canonical form), timestamps aside."""
    post = schema["paths"]["/api/v1/placements/"]["post"]
    sent = _examples(post)["APlacementWithThreeRules"]["value"]
    documented = _examples(post, "201")["ThePlacementAsAnswered"]["value"]
    _, key = api_key_for(alpha, scopes=("manage",))

    response = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/api/v1/placements/", sent, content_type="application/json"
    )

    assert len(sent["rules"]) == 3
    assert response.status_code == 201, response.json()
    answered = response.json()
    timestamps = ("created_at", "updated_at")
    assert {k: v for k, v in answered.items() if k not in timestamps} == {
        k: v for k, v in documented.items() if k not in timestamps
    }


def test_the_documented_batch_job_request_answers_the_documented_status_body(
    schema, alpha, store_client, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)  # the listed shopper ids are kept in file storage
    post = schema["paths"]["/api/v1/recommendations/batch"]["post"]
    sent = _examples(post)["ListedShoppers"]["value"]
    queued = _examples(post, "202")["TheQueuedJob"]["value"]
    finished = _examples(schema["paths"]["/api/v1/recommendations/batch/{job_id}"]["get"], "200")
    _, key = api_key_for(alpha, scopes=("recommend",))
    client = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}")

    response = client.post("/api/v1/recommendations/batch", sent, content_type="application/json")
    read = client.get(f"/api/v1/recommendations/batch/{response.json()['id']}")

    assert response.status_code == 202, response.json()
    answered = response.json()
    assert {k: v for k, v in answered.items() if k not in ("id", "created_at")} == {
        k: v for k, v in queued.items() if k not in ("id", "created_at")
    }
    assert read.status_code == 200
    assert sorted(read.json()) == sorted(finished["AFinishedJob"]["value"])
    assert sorted(finished["AFinishedJob"]["value"]["download"]) == ["bytes", "expires_at", "url"]


def test_batch_job_bodies_describe_every_field_and_name_their_status_enum(schema):
    components = schema["components"]["schemas"]
    post = schema["paths"]["/api/v1/recommendations/batch"]["post"]
    job = components["BatchJob"]
    request = components["BatchJobRequest"]

    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchJobRequest"
    }
    assert sorted(request["properties"]) == [
        "active_within_days",
        "k",
        "placement",
        "segment",
        "user_ids",
    ]
    assert all(field.get("description") for field in request["properties"].values())
    assert all(field.get("description") for field in job["properties"].values())
    assert job["properties"]["status"]["allOf"] == [{"$ref": "#/components/schemas/BatchJobStatus"}]
    assert components["BatchJobStatus"]["enum"] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]


def test_the_connector_webhooks_stay_out_of_the_schema(schema):
    """Plain Django views verifying the shop's signature over the raw body (README, "Store
    connectors", documents them); wrapping them in DRF for the schema would change them."""
    assert not [path for path in schema["paths"] if "/connectors/" in path]
