"""The `--tenant` lookup every management command shares (apps.tenants.commands)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.tenants.commands import store_for_slug


def test_a_store_is_found_by_its_slug(alpha, beta):
    assert store_for_slug("alpha") == alpha
    assert store_for_slug("beta") == beta


@pytest.mark.parametrize("slug", ["nope", "", "ALPHA", "store_alpha"])
def test_an_unknown_slug_is_one_clear_error(alpha, slug):
    with pytest.raises(CommandError) as caught:
        store_for_slug(slug)

    assert str(caught.value) == f"No store with slug {slug!r}."


def test_public_is_a_store_only_where_the_command_allows_it(db):
    with pytest.raises(CommandError) as caught:
        store_for_slug("public")

    assert str(caught.value) == "No store with slug 'public'."
    assert store_for_slug("public", allow_public=True).schema_name == "public"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("create_api_key", {"name": "k", "scopes": "ingest"}),
        ("export_audit_csv", {}),
        ("verify_audit_chain", {}),
        ("sync_stripe", {}),
        ("import_items", {}),
        ("ids_report", {}),
        ("evaluate_models", {}),
        ("seed_demo", {}),
        ("train_models", {}),
        ("invite_member", {"email": "x@example.com", "role": "analyst"}),
    ],
)
def test_every_command_with_a_tenant_option_refuses_an_unknown_store(db, command, options):
    args = ["/nonexistent.jsonl"] if command == "import_items" else []
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, tenant="nope", **options)

    assert str(caught.value) == "No store with slug 'nope'."


@pytest.mark.parametrize(
    ("command", "options", "message"),
    [
        ("export_audit_csv", {"output": "/nonexistent/dir/a.csv"}, "Cannot write"),
        ("export_audit_csv", {"output": "{tmp}"}, "Cannot write"),
        ("export_training_data", {"out": "/dev/null/x"}, "Cannot write into"),
        (
            "create_api_key",
            {"name": "k", "scopes": "ingest", "expires_in_days": 99999999999},
            "--expires-in-days must be from 1 to 3650.",
        ),
        (
            "create_api_key",
            {"name": "k", "scopes": "ingest", "expires_in_days": 0},
            "--expires-in-days must be from 1 to 3650.",
        ),
    ],
)
def test_a_bad_argument_is_one_clear_error_not_a_traceback(
    alpha, tmp_path, command, options, message
):
    options = {k: str(tmp_path) if v == "{tmp}" else v for k, v in options.items()}

    with pytest.raises(CommandError, match=message):
        call_command(command, tenant="alpha", **options)
