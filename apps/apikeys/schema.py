"""OpenAPI description of API-key authentication (drf-spectacular), loaded by the app config:
Swagger's "Authorize" takes a key for either scheme and "Try it out" sends it as
`Authorization: Bearer <key>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.apikeys.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ss_live_<prefix>_<secret>",
            "description": (
                "`Authorization: Bearer <API key>`: a secret key of this store's host (API keys "
                "page, or `manage.py create_api_key`). Scopes: `ingest` (writes), `recommend` "
                "(lists), `manage` (models, experiments); reads take any scope. "
                "`Authorization: Token …` is refused with 401 `wrong_auth_scheme`."
            ),
        }


class PublishableKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.apikeys.publishable.PublishableKeyAuthentication"
    name = "PublishableKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ss_pub_<prefix>_<secret>",
            "description": (
                "A publishable key (browsers, the SDK), from one of the key's allowed origins "
                "(`Origin` header). Tracks events and gets session, trending, similar and "
                "bought-together lists; a shopper's own lists and events also need the "
                "`X-ShelfSense-User-Token` header, a token the store's backend signs."
            ),
        }
