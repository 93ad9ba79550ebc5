"""File import of items and events (CSV or JSON Lines) through the same services, validation
and idempotency as the API. Used by the `import_items` and `import_events` commands.

CSV: a header row naming the API fields. Empty cells are omitted fields. Items: `categories`
separated by `|`, `in_stock` true/false/1/0/yes/no, `attributes` a JSON object. Events:
`value` a number.
JSON Lines (`.jsonl`, `.ndjson`, `.json`): one JSON object per line, exactly the API shape.

The whole file is read and parsed before anything is stored: a file that is not UTF-8, a CSV
field over the csv module's limit (131,072 characters) or a malformed CSV line stops the
import with `ImportFileError` (the line and why), and nothing is stored. Rows that parse but
fail validation are reported one by one (line, field, message) and the valid rows are stored;
the summary says how many.

Events without an `event_id` get a deterministic one derived from their content
(`imp-<hash of user_id, item_id, type, value, timestamp>`), so importing a file twice stores
each event once.
"""

from __future__ import annotations

import csv
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from apps.catalog.services import events_ingest, items_upsert
from apps.catalog.validation import RowError

EVENT_BATCH = 5_000
ITEM_BATCH = 1_000
_UNPARSABLE = object()


class ImportFileError(Exception):
    """The file cannot be read as a whole; nothing was imported."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def _utf8_lines(handle: IO[bytes], consumed: list[int] | None = None) -> Iterator[str]:
    """The file's lines as text, refusing a line that is not UTF-8 (a leading BOM is dropped).
    `consumed[0]` follows the number of the line last handed out."""
    for number, raw in enumerate(handle, start=1):
        if consumed is not None:
            consumed[0] = number
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


@dataclass
class ImportReport:
    rows: int = 0
    stored: int = 0  # events accepted, or items created + updated
    duplicates: int = 0
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, message)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _csv_item(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in row.items():
        if raw is None or raw == "" or name is None:
            continue
        if name == "categories":
            out[name] = [part.strip() for part in raw.split("|") if part.strip()]
        elif name == "in_stock":
            lowered = raw.strip().lower()
            truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            out[name] = truth.get(lowered, raw)
        elif name == "attributes":
            try:
                out[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                out[name] = raw
        else:
            out[name] = raw
    return out


def _csv_event(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in row.items():
        if raw is None or raw == "" or name is None:
            continue
        if name == "value":
            try:
                out[name] = float(raw)
            except ValueError:
                out[name] = raw
        else:
            out[name] = raw
    return out


def _read(path: Path, csv_row: Callable[[dict[str, str]], dict[str, Any]]) -> Iterator[tuple]:
    """(line number, row or _UNPARSABLE, problem) per data line."""
    if path.suffix.lower() == ".csv":
        with path.open("rb") as handle:
            consumed = [0]
            # Strict: a quote left open (which would swallow the rest of the file into one
            # cell) or a stray quote is a malformed line, not a silently different row.
            reader = csv.DictReader(_utf8_lines(handle, consumed), strict=True)
            try:
                columns = reader.fieldnames or []
                repeated = sorted({name for name in columns if columns.count(name) > 1})
                if repeated:
                    raise ImportFileError(1, f"the header repeats {', '.join(repeated)}")
                for row in reader:
                    if None in row:
                        raise ImportFileError(
                            reader.line_num, "the line has more cells than the header has columns"
                        )
                    yield reader.line_num, csv_row(row), ""
            except csv.Error as exc:
                message = str(exc)
                if "field larger than field limit" in message:
                    message = (
                        f"a field is longer than {csv.field_size_limit():,} characters "
                        "(the CSV field limit)"
                    )
                raise ImportFileError(consumed[0], message) from None
        return
    with path.open("rb") as handle:
        for number, line in enumerate(_utf8_lines(handle), start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line), ""
            except orjson.JSONDecodeError as exc:
                yield number, _UNPARSABLE, f"Malformed JSON: {exc}"


def _event_with_id(row: Any) -> Any:
    if isinstance(row, dict) and row.get("event_id") is None:
        content = "\x1f".join(
            str(row.get(name, ""))
            for name in ("user_id", "item_id", "type", "value", "timestamp", "recommendation_id")
        )
        row = {
            **row,
            "event_id": "imp-" + hashlib.blake2b(content.encode(), digest_size=16).hexdigest(),
        }
    return row


class _Progress:
    def __init__(self, stream: IO[str], label: str) -> None:
        self.stream = stream
        self.label = label
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, rows: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        elapsed = now - self.started
        rate = rows / elapsed if elapsed else 0
        self.stream.write(f"\r{self.label}: {rows:,} rows  {rate:,.0f} rows/s")
        self.stream.flush()
        if force:
            self.stream.write("\n")


def _run(path: Path, kind: str, progress_stream: IO[str] | None) -> ImportReport:
    report = ImportReport()
    progress = _Progress(progress_stream or sys.stderr, f"import {kind}")
    batch_size = EVENT_BATCH if kind == "events" else ITEM_BATCH
    csv_row = _csv_event if kind == "events" else _csv_item
    batch: list[Any] = []
    lines: list[int] = []

    def flush() -> None:
        if not batch:
            return
        if kind == "events":
            result = events_ingest(rows=[_event_with_id(row) for row in batch], source="import")
            report.stored += result.accepted
            report.duplicates += result.duplicates
            errors: list[RowError] = result.errors
        else:
            result = items_upsert(rows=batch)
            report.created += result.created
            report.updated += result.updated
            report.stored += result.created + result.updated
            errors = result.errors
        report.errors.extend((lines[e.index], e.field, e.message) for e in errors)
        batch.clear()
        lines.clear()
        progress.update(report.rows)

    for _ in _read(path, csv_row):
        pass  # the whole file reads and parses (ImportFileError otherwise): now store it
    for line, row, problem in _read(path, csv_row):
        report.rows += 1
        if row is _UNPARSABLE:
            report.errors.append((line, "", problem))
            continue
        batch.append(row)
        lines.append(line)
        if len(batch) >= batch_size:
            flush()
    flush()
    report.seconds = time.perf_counter() - progress.started
    progress.update(report.rows, force=True)
    return report


def events_import(*, path: Path, progress_stream: IO[str] | None = None) -> ImportReport:
    """Import events from `path` into the current store schema, batch by batch (each batch
    its own transaction, so a stopped import can be re-run: stored rows count as duplicates).
    Raises ImportFileError, having stored nothing, when the file cannot be read whole."""
    return _run(path, "events", progress_stream)


def items_import(*, path: Path, progress_stream: IO[str] | None = None) -> ImportReport:
    """Import (upsert) items from `path` into the current store schema. Raises
    ImportFileError, having stored nothing, when the file cannot be read whole."""
    return _run(path, "items", progress_stream)
