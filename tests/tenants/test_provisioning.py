import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_exists, tenant_context

from apps.catalog.models import Item
from apps.core.errors import ApplicationError
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_create
from apps.users.models import Membership, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_tenant_create_clones_schema_domain_and_owner():
    owner = UserFactory(email="owner@gamma.test")

    tenant = tenant_create(slug="gamma", name="Gamma Goods", owner=owner)

    assert tenant.schema_name == "store_gamma"
    assert schema_exists("store_gamma")
    assert Domain.objects.get(tenant=tenant).domain == "gamma.localhost"
    assert Membership.objects.get(tenant=tenant).user == owner
    assert Membership.objects.get(tenant=tenant).role == "owner"
    with tenant_context(tenant):
        assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("slug", "field_message"),
    [
        ("Bad_Slug", "3-40 lowercase letters, digits or hyphens, starting with a letter."),
        ("www", "reserved"),
        ("xn--dmo-8ka", "reserved"),
        ("ab--c", "reserved"),
        ("alpha", "taken"),
    ],
)
def test_tenant_create_rejects_bad_slugs_and_writes_nothing(alpha, slug, field_message):
    before = Tenant.objects.count()

    with pytest.raises(ApplicationError) as raised:
        tenant_create(slug=slug, name="Whatever")

    assert raised.value.fields == {"slug": [field_message]}
    assert Tenant.objects.count() == before


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("   ", "required"),
        ("x" * 121, "too_long"),
        ("Shop\x01", "not_printable"),
        ("A\nB", "not_printable"),
    ],
)
def test_tenant_create_rejects_bad_names_and_writes_nothing(db, name, problem):
    before = Tenant.objects.count()

    with pytest.raises(ApplicationError) as raised:
        tenant_create(slug="epsilon", name=name)

    assert raised.value.fields == {"name": [problem]}
    assert Tenant.objects.count() == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"slug": "www", "name": "Shop", "owner_email": "new@shop.test"}, "reserved"),
        ({"slug": "okslug", "name": "x" * 500, "owner_email": "new@shop.test"}, "At most 120"),
        ({"slug": "okslug", "name": "Shop", "owner_email": "a@b.c"}, "Not a valid email"),
    ],
)
def test_create_tenant_command_that_fails_leaves_no_account(db, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_tenant", **options)

    assert not User.objects.filter(email__in=["new@shop.test", "a@b.c"]).exists()
    assert not Tenant.objects.filter(slug="okslug").exists()


def test_create_tenant_command_prints_url_and_owner(capsys):
    call_command("create_tenant", slug="delta", name="Delta", owner_email="Boss@Delta.test")

    out = capsys.readouterr().out
    assert "URL: http://delta.localhost/" in out
    assert "Owner: boss@delta.test" in out
    assert "Owner password (shown once): " in out


def test_list_tenants_command_lists_stores(alpha, beta, capsys):
    call_command("list_tenants")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SLUG", "STATUS", "SCHEMA", "CREATED", "URL"]
    assert lines[1].split()[:3] == ["alpha", "active", "store_alpha"]
    assert lines[2].split()[:3] == ["beta", "active", "store_beta"]
