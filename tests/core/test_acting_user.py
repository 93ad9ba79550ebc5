"""One way to name who acted: every service that records who acted takes `acting_user` (with
`actor_api_key` / `actor_label` beside it where an API key or a label can act, as `audit_record`
does). The old spellings must not come back."""

import importlib
import inspect
import pkgutil
from pathlib import Path

from django.conf import settings

OLD_SPELLINGS = {"actor", "actor_user", "started_by", "created_by", "invited_by"}


def _service_modules() -> list[str]:
    names = []
    for app in sorted((Path(settings.BASE_DIR) / "apps").iterdir()):
        if (app / "services.py").is_file():
            names.append(f"apps.{app.name}.services")
        elif (app / "services" / "__init__.py").is_file():
            package = importlib.import_module(f"apps.{app.name}.services")
            names.append(package.__name__)
            names += [
                f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
            ]
    return names


def _public_functions(module_name: str):
    module = importlib.import_module(module_name)
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("_") and function.__module__ == module_name:
            yield f"{module_name}.{name}", function


def test_the_scan_sees_the_services_of_every_app():
    functions = dict(fn for module in _service_modules() for fn in _public_functions(module))

    assert {"membership_invite", "model_version_start", "webhook_endpoint_create"} <= {
        name.rsplit(".", 1)[1] for name in functions
    }
    assert "apps.users.services.invitations.membership_invite" in functions


def test_no_service_names_the_actor_any_other_way():
    offenders = [
        f"{name}({parameter})"
        for module in _service_modules()
        for name, function in _public_functions(module)
        for parameter in inspect.signature(function).parameters
        if parameter in OLD_SPELLINGS
    ]

    assert offenders == []


def test_the_services_that_record_who_acted_take_acting_user():
    from apps.audit.services import audit_record
    from apps.recommendations.services import model_version_start
    from apps.users.services import invitation_accept, membership_invite, membership_remove

    for service in (
        audit_record,
        model_version_start,
        membership_invite,
        membership_remove,
        invitation_accept,
    ):
        assert "acting_user" in inspect.signature(service).parameters, service.__name__
