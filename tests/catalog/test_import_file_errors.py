"""Imports of files that cannot be read whole (issue 13): invalid UTF-8 or a CSV field over
the csv module's limit ended in a traceback after committing the batches before it. Now the
file is read whole first: one error line naming the line, a non-zero exit, nothing stored."""

import csv

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from apps.catalog import importing
from apps.catalog.models import Event, Item
from tests.factories import event_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    """Batches of 2 rows: without the first pass, the rows before the bad line were stored."""
    monkeypatch.setattr(importing, "EVENT_BATCH", 2)
    monkeypatch.setattr(importing, "ITEM_BATCH", 2)


def _event_lines(count: int) -> list[bytes]:
    ts = event_payload()["timestamp"]
    return [f"e{n},s-1,alpha-only,view,,{ts}\n".encode() for n in range(count)]


HEADER = b"event_id,user_id,item_id,type,value,timestamp\n"


def _import(kind, path):
    with pytest.raises(CommandError) as refused:
        call_command(f"import_{kind}", "--tenant", "alpha", str(path))
    return str(refused.value)


def test_a_csv_line_that_is_not_utf8_stores_nothing(alpha, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"".join(_event_lines(5)) + b"e9,s-\xff,alpha-only,view,,x\n")

    message = _import("events", path)

    assert message == (
        f"{path}: line 7: not valid UTF-8 (byte 0xff at column 6). Nothing was imported."
    )
    with tenant_context(alpha):
        assert Event.objects.count() == 0


def test_a_json_line_that_is_not_utf8_stores_nothing(alpha, tmp_path):
    path = tmp_path / "events.jsonl"
    good = event_payload(event_id="j1")
    lines = [str(good).replace("'", '"').encode() + b"\n"] * 3
    path.write_bytes(b"".join(lines) + b'{"user_id": "\xc3\x28"}\n')

    message = _import("events", path)

    assert message == (
        f"{path}: line 4: not valid UTF-8 (byte 0xc3 at column 14). Nothing was imported."
    )
    with tenant_context(alpha):
        assert Event.objects.count() == 0


def test_a_csv_field_over_the_limit_stores_nothing(alpha, tmp_path):
    path = tmp_path / "items.csv"
    big = "x" * (csv.field_size_limit() + 1)
    path.write_text(
        "item_id,title\n" + "".join(f"i{n},Item {n}\n" for n in range(5)) + f"big,{big}\n"
    )

    message = _import("items", path)

    assert message == (
        f"{path}: line 7: a field is longer than 131,072 characters (the CSV field limit). "
        "Nothing was imported."
    )
    with tenant_context(alpha):
        assert list(Item.objects.values_list("item_id", flat=True)) == ["alpha-only"]


def test_a_readable_file_with_invalid_rows_stores_the_valid_ones_and_says_so(
    alpha, tmp_path, capsys
):
    path = tmp_path / "events.csv"
    path.write_bytes(HEADER + b"".join(_event_lines(3)) + b"e9,s\x07,alpha-only,view,,x\n")

    call_command("import_events", "--tenant", "alpha", str(path))

    out = capsys.readouterr().out
    assert "3 stored, 0 duplicates, 2 errors" in out
    assert (
        "line 5: user_id: Must contain printable characters only "
        "(no control characters or line breaks)." in out
    )
    with tenant_context(alpha):
        assert Event.objects.count() == 3


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("item_id,title,item_id\ni1,One,i2\n", "line 1: the header repeats item_id"),
        ("item_id,title\ni1,One\ni2,Two,extra\n", "line 3: the line has more cells than"),
        ('item_id,title\ni1,One\ni2,"Two\ni3,Three\n', "line 4: "),
        ('item_id,title\ni1,One\ni2,"Two"x\n', "line 3: "),
    ],
)
def test_a_malformed_csv_stores_nothing_and_names_the_line(alpha, tmp_path, text, where):
    path = tmp_path / "items.csv"
    path.write_text(text)

    message = _import("items", path)

    assert message.startswith(f"{path}: {where}")
    assert message.endswith("Nothing was imported.")
    with tenant_context(alpha):
        assert list(Item.objects.values_list("item_id", flat=True)) == ["alpha-only"]
