"""The one place that talks to Stripe: a `stripe.StripeClient` built from settings.

`STRIPE_API_BASE` redirects every base address (API and meter events) to another server; the
test suite points it at a local fake Stripe. The API version is pinned in settings
(`STRIPE_API_VERSION`), so upgrading the library never silently changes payload shapes.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings

from apps.core.errors import ApplicationError


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise ApplicationError(
            "Billing is not configured: STRIPE_SECRET_KEY is unset.",
            code="billing_unavailable",
            status_code=503,
        )
    base_addresses: dict[str, Any] = {}
    if settings.STRIPE_API_BASE:
        base_addresses = {
            "api": settings.STRIPE_API_BASE,
            "files": settings.STRIPE_API_BASE,
            "connect": settings.STRIPE_API_BASE,
            "meter_events": settings.STRIPE_API_BASE,
        }
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses=base_addresses,  # type: ignore[arg-type]
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def stripe_unavailable(exc: stripe.StripeError) -> ApplicationError:
    """A Stripe failure as the error our API and pages show (never a 500)."""
    return ApplicationError(
        f"Stripe could not complete the request: {exc.user_message or exc.__class__.__name__}.",
        code="stripe_error",
        status_code=502,
    )
