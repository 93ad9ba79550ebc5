"""Writes of billing, one module per subject:

- `plans`: the default plans, seeded once, and the Free plan's row;
- `checkout`: the store's Stripe customer, Checkout Sessions and the Customer Portal;
- `stripe_events`: webhook intake (verify, store once) and the handlers that apply events;
- `subscriptions`: the subscription mirror (Stripe's state on the store's row), operator
  plan assignment and re-sync from Stripe;
- `usage`: quota warnings, the hourly usage rollup and Stripe meter reporting.

Stripe is the source of truth for subscriptions: webhook processing re-fetches the subscription
(or invoice) from Stripe instead of trusting the event's snapshot. Callers import from this
package (`from apps.billing import services`); the names below are its public surface.
"""

from apps.billing.services.checkout import (
    billing_customer_ensure,
    checkout_session_start,
    portal_session_start,
)
from apps.billing.services.plans import plans_seed
from apps.billing.services.stripe_events import (
    EVENT_HANDLERS,
    stripe_event_process,
    stripe_event_receive,
)
from apps.billing.services.subscriptions import (
    subscription_apply_remote,
    subscription_plan_assign,
    subscription_sync,
)
from apps.billing.services.usage import (
    METER_MAX_AGE,
    ROLLUP_LAG,
    ROLLUP_LOOKBACK,
    usage_report_to_stripe,
    usage_rollup,
    usage_threshold_notify,
)

__all__ = [
    "EVENT_HANDLERS",
    "METER_MAX_AGE",
    "ROLLUP_LAG",
    "ROLLUP_LOOKBACK",
    "billing_customer_ensure",
    "checkout_session_start",
    "plans_seed",
    "portal_session_start",
    "stripe_event_process",
    "stripe_event_receive",
    "subscription_apply_remote",
    "subscription_plan_assign",
    "subscription_sync",
    "usage_report_to_stripe",
    "usage_rollup",
    "usage_threshold_notify",
]
