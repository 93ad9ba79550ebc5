"""The browser SDK as served: versioned URL on a store's host, cacheable for a year, loadable
from any origin; README's integrity hash is the served file's and its token snippet signs
tokens the platform accepts."""

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.exceptions import AuthenticationFailed

from apps.apikeys.publishable import user_token_verify
from apps.apikeys.sdk import sdk_integrity

pytestmark = pytest.mark.django_db

SDK = "/sdk/v1/shelfsense.js"


def test_the_sdk_is_served_to_anyone_with_long_cache_and_cors(alpha, store_client):
    source = (Path(settings.BASE_DIR) / "static/sdk/v1/shelfsense.js").read_bytes()

    response = store_client(alpha).get(SDK)

    assert response.status_code == 200
    assert response.content == source
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Access-Control-Allow-Origin"] == "*"
    digest = base64.b64encode(hashlib.sha384(source).digest()).decode()
    assert response["ETag"] == f'"sha384-{digest}"'


def test_a_revalidation_gets_304(alpha, store_client):
    etag = store_client(alpha).get(SDK)["ETag"]

    response = store_client(alpha).get(SDK, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""


def test_readme_documents_the_served_files_integrity(capsys):
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    call_command("sdk_integrity")
    printed = capsys.readouterr().out.strip()

    documented = re.findall(r'integrity="(sha384-[A-Za-z0-9+/=]+)"', readme)

    assert printed == sdk_integrity()
    assert documented == [printed], "README's SDK snippet: run `manage.py sdk_integrity`"


def test_readmes_token_snippet_signs_tokens_the_platform_accepts():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    [snippet] = [block for block in blocks if "def shelfsense_user_token" in block]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 (README's own example, run as a store would)

    token = namespace["shelfsense_user_token"]("ss_idv_example", "gid://shop/Customer/7", 600)

    assert user_token_verify(token, secret=b"ss_idv_example") == "gid://shop/Customer/7"
    with pytest.raises(AuthenticationFailed):
        user_token_verify(token, secret=b"ss_idv_other")
