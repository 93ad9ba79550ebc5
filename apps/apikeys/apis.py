"""Store API for API keys.

- GET  /api/v1/auth/key/                 the calling key itself (any scope): integrators check
                                          their configuration with it.
- GET  /api/v1/api-keys/                 list keys: a member allowed `manage_api_keys`, or a key
                                          with the `manage` scope.
- POST /api/v1/api-keys/                 create (members only); the answer holds the key once.
- POST /api/v1/api-keys/<id>/revoke/     revoke (members only).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.models import ApiKey
from apps.apikeys.permissions import RequireScope
from apps.apikeys.selectors import api_key_get, api_key_list
from apps.apikeys.services import api_key_create, api_key_revoke
from apps.core.errors import ApplicationError
from apps.users.permissions import StoreMemberPermission


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ApiKey.Kind.values)
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    allowed_origins = serializers.ListField(
        child=serializers.CharField(), help_text="Publishable keys: the storefront origins."
    )
    status = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class CurrentKeyApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope.any()]

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        prefix = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField())
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="auth_key_get",
        description="The calling key (any scope): check an integration's configuration.",
        responses=inline_serializer(
            "CurrentKey",
            {
                "store": serializers.CharField(),
                "name": serializers.CharField(),
                "prefix": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "expires_at": serializers.DateTimeField(allow_null=True),
            },
        ),
    )
    def get(self, request):
        return Response({"store": request.tenant.slug, **self.OutputSerializer(request.auth).data})


class ApiKeyListCreateApi(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]

    @extend_schema_serializer(component_name="ApiKeyInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=ApiKey.Scope.values), allow_empty=False
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def get_permissions(self):
        if self.request.method == "GET":
            return [(StoreMemberPermission("manage_api_keys") | RequireScope("manage"))()]
        return [StoreMemberPermission("manage_api_keys")()]

    @extend_schema(
        operation_id="api_keys_list",
        description="The store's keys, secret and publishable, newest first (never the keys "
        "themselves): members allowed to manage keys, or a key with `manage`.",
        responses=inline_serializer("ApiKeyList", {"results": ApiKeyOutputSerializer(many=True)}),
    )
    def get(self, request):
        return Response({"results": ApiKeyOutputSerializer(api_key_list(), many=True).data})

    @extend_schema(
        operation_id="api_keys_create",
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "ApiKeyCreated",
                {
                    **{
                        name: field for name, field in ApiKeyOutputSerializer().get_fields().items()
                    },
                    "key": serializers.CharField(help_text="Shown once."),
                },
            )
        },
        description="Members only (session); the answer holds the key once.",
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, plaintext = api_key_create(
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            expires_at=data.validated_data.get("expires_at"),
            acting_user=request.user,
            request=request,
        )
        body = {**ApiKeyOutputSerializer(api_key).data, "key": plaintext}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [StoreMemberPermission("manage_api_keys")]

    @extend_schema(
        operation_id="api_keys_revoke",
        request=None,
        responses=ApiKeyOutputSerializer,
        description="Members only (session).",
    )
    def post(self, request, api_key_id: int):
        api_key = api_key_get(api_key_id=api_key_id)
        if api_key is None:
            raise ApplicationError("No such API key.", code="not_found", status_code=404)
        api_key = api_key_revoke(api_key=api_key, acting_user=request.user, request=request)
        return Response(ApiKeyOutputSerializer(api_key).data)
