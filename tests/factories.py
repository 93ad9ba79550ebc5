"""Factories for test data. Tenant-schema factories must be used inside `tenant_context`."""

import factory
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.apikeys.services import api_key_create
from apps.billing.models import Plan, Subscription, UsageRecord
from apps.billing.selectors import billing_state_forget
from apps.catalog.models import Event, Item, Shopper
from apps.recommendations.models import Impression, ModelVersion
from apps.users.models import Membership, User

# Every store role, in the order of Membership.Role: parametrise role matrices with it.
ROLES = [role.value for role in Membership.Role]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password("correct-horse-battery")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    item_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    categories = factory.LazyFunction(lambda: ["general"])
    price = "9.99"


class ShopperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shopper

    user_id = factory.Sequence(lambda n: f"shopper-{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    event_id = factory.Sequence(lambda n: f"evt-{n}")
    user_id = factory.Sequence(lambda n: f"shopper-{n}")
    item_id = "sku-1"
    type = Event.Type.VIEW
    timestamp = factory.LazyFunction(timezone.now)


def event_payload(**overrides):
    """One valid API event (JSON-ready), with `overrides` applied; a None override drops the
    field."""
    row = {
        "event_id": "e-1",
        "user_id": "shopper-1",
        "item_id": "alpha-only",
        "type": "view",
        "timestamp": timezone.now().isoformat(),
    }
    row.update(overrides)
    return {key: value for key, value in row.items() if value is not None}


def api_key_for(tenant, *, scopes=("ingest", "recommend"), name="Integration", **kwargs):
    """(ApiKey, plaintext) created through the service in `tenant`'s schema."""
    with tenant_context(tenant):
        return api_key_create(name=name, scopes=list(scopes), **kwargs)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A store's billing row (public schema); plans come from the seeding migration."""

    class Meta:
        model = Subscription

    plan = factory.LazyFunction(lambda: Plan.objects.get(code="free"))
    status = Subscription.Status.NONE


def subscribe_store(tenant, code: str) -> Subscription:
    """Put the store on plan `code`, active (committed when the caller is not in a test
    transaction); its cached billing state is dropped."""
    sub = SubscriptionFactory(
        tenant=tenant, plan=Plan.objects.get(code=code), status=Subscription.Status.ACTIVE
    )
    billing_state_forget(tenant.schema_name)
    return sub


class UsageRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageRecord

    metric = "events_ingested"
    quantity = 100


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version row without an artifact (store schema); train through the services for one
    that serves."""

    class Meta:
        model = ModelVersion

    number = factory.Sequence(lambda n: 1000 + n)
    status = ModelVersion.Status.READY
    started_by_label = "factory"


class ImpressionFactory(factory.django.DjangoModelFactory):
    """A served list (store schema)."""

    class Meta:
        model = Impression

    recommendation_id = factory.Sequence(lambda n: f"rec{n:08d}")
    surface = "user"
    user_id = factory.Sequence(lambda n: f"shopper-{n}")
    strategy = "als"
    item_ids = factory.LazyFunction(lambda: ["sku-1", "sku-2"])
    served_at = factory.LazyFunction(timezone.now)
