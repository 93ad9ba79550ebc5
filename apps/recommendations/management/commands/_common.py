"""Shared by the recommendation commands: the metrics table."""

from __future__ import annotations


def format_table(rows: list[dict]) -> str:
    """A plain fixed-width table; floats with 4 decimals, None as '-'."""
    if not rows:
        return "(no evaluated versions)"
    columns = list(rows[0])

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(widths[i]) for i, column in enumerate(columns))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(r)) for r in cells]
    return "\n".join(lines)
