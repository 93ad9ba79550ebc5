"""Store dashboard pages, one module per page (forms with their page): `overview`, `catalog`
(items and shoppers), `model_versions`, `experiments`, `team`, `audit_log`, `notifications`,
`store_settings`; `common` holds pagination. Every page goes through
`store_member_required(action)` (login, membership of the host's store, role per
apps.users.permissions) and stays thin: parse input, call one selector or service, render.
`apps/dashboard/urls.py` maps each URL to its page's view."""
