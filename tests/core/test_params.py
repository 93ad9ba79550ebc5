"""The one boolean query-parameter parser of the store APIs (apps.core.params)."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from apps.core.errors import ApplicationError
from apps.core.params import bool_param


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("Yes", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("False", False),
        ("OFF", False),
    ],
)
def test_every_accepted_word_parses(raw, expected):
    assert bool_param(QueryDict(f"flag={raw}"), "flag") is expected
    assert bool_param(QueryDict(f"flag={raw}"), "flag", default=not expected) is expected


@pytest.mark.parametrize("query", ["", "flag=", "other=1"])
@pytest.mark.parametrize("default", [None, True, False])
def test_absent_or_empty_gives_the_default(query, default):
    assert bool_param(QueryDict(query), "flag", default=default) is default


@pytest.mark.parametrize("raw", ["maybe", "2", "-1", "t", "y", "truee", " true", "none"])
def test_anything_else_is_a_400_naming_the_parameter(raw):
    with pytest.raises(ApplicationError) as caught:
        bool_param({"in_stock": raw}, "in_stock")

    assert caught.value.status_code == 400
    assert caught.value.code == "invalid"
    assert caught.value.message == "Invalid input in: in_stock."
    assert caught.value.fields == {"in_stock": ["Must be true or false."]}
