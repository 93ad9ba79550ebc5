"""Writes of placements: validated, audited in the same transaction, and announced to every
serving process after commit (`registry.placements_changed`)."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.merchandising.models import Placement
from apps.merchandising.registry import placements_changed
from apps.merchandising.rules_json import RuleError, parse_rules

MAX_PLACEMENTS = 100
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


def placement_validate(*, name: str | None, scenario: str, rules: Any) -> dict[str, Any]:
    """The canonical rules JSON. Raises ApplicationError 400 naming the field (`name`,
    `scenario`, or `rules.<path>`)."""
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        raise _invalid(
            "name",
            "1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
        )
    if scenario not in Placement.Scenario.values:
        raise _invalid("scenario", f"Must be one of: {', '.join(Placement.Scenario.values)}.")
    try:
        return parse_rules(rules if rules is not None else {}).as_dict()
    except RuleError as exc:
        field = f"rules.{exc.field}" if exc.field != "rules" else "rules"
        raise _invalid(field, exc.message) from None


def _announce() -> None:
    schema = connection.schema_name
    transaction.on_commit(lambda: placements_changed(schema), robust=True)


@transaction.atomic
def placement_create(
    *,
    name: str,
    scenario: str,
    rules: Any,
    acting_user=None,
    actor_api_key=None,
    request: HttpRequest | None = None,
) -> Placement:
    """Create a placement of the current store. Raises ApplicationError 400 naming the field
    (invalid input, a name already used, or the store's MAX_PLACEMENTS reached)."""
    canonical = placement_validate(name=name, scenario=scenario, rules=rules)
    if Placement.objects.count() >= MAX_PLACEMENTS:
        raise _invalid("name", f"A store has at most {MAX_PLACEMENTS} placements.")
    try:
        with transaction.atomic():
            placement = Placement.objects.create(name=name, scenario=scenario, rules=canonical)
    except IntegrityError:
        raise _invalid("name", "A placement of this name already exists.") from None
    audit_record(
        action=AuditAction.PLACEMENT_CREATED,
        acting_user=acting_user,
        actor_api_key=actor_api_key,
        target_type="placement",
        target_id=name,
        details={"scenario": scenario, "rules": canonical},
        request=request,
    )
    _announce()
    return placement


@transaction.atomic
def placement_update(
    *,
    name: str,
    scenario: str,
    rules: Any,
    acting_user=None,
    actor_api_key=None,
    request: HttpRequest | None = None,
) -> Placement:
    """Replace the scenario and rules of placement `name` (404 when there is none)."""
    canonical = placement_validate(name=None, scenario=scenario, rules=rules)
    placement = Placement.objects.select_for_update().filter(name=name).first()
    if placement is None:
        raise ApplicationError(
            f"No placement {name!r} in this store.", code="not_found", status_code=404
        )
    before = {"scenario": placement.scenario, "rules": placement.rules}
    placement.scenario, placement.rules = scenario, canonical
    placement.save(update_fields=["scenario", "rules", "updated_at"])
    audit_record(
        action=AuditAction.PLACEMENT_UPDATED,
        acting_user=acting_user,
        actor_api_key=actor_api_key,
        target_type="placement",
        target_id=name,
        details={"before": before, "after": {"scenario": scenario, "rules": canonical}},
        request=request,
    )
    _announce()
    return placement


@transaction.atomic
def placement_delete(
    *, name: str, acting_user=None, actor_api_key=None, request: HttpRequest | None = None
) -> None:
    """Delete placement `name` (404 when there is none)."""
    placement = Placement.objects.select_for_update().filter(name=name).first()
    if placement is None:
        raise ApplicationError(
            f"No placement {name!r} in this store.", code="not_found", status_code=404
        )
    details = {"scenario": placement.scenario, "rules": placement.rules}
    placement.delete()
    audit_record(
        action=AuditAction.PLACEMENT_DELETED,
        acting_user=acting_user,
        actor_api_key=actor_api_key,
        target_type="placement",
        target_id=name,
        details=details,
        request=request,
    )
    _announce()
