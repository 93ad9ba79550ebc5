"""Outgoing email. Imported by base.py; production requires a delivering backend."""

from config.settings.environment import BASE_DIR, env

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="ShelfSense <no-reply@shelfsense.local>")
# Where stores write to change plan when online payment is not configured (no Stripe price).
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@shelfsense.local")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / ".data" / "mail"))
# One URL instead of the variables above (production requires a delivering backend), e.g.
# smtp+tls://user:password@smtp.example.com:587; it wins over them when set.
if env("EMAIL_URL", default=""):
    _email = env.email_url("EMAIL_URL")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or EMAIL_HOST
    EMAIL_PORT = _email.get("EMAIL_PORT") or EMAIL_PORT
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", EMAIL_USE_TLS))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
