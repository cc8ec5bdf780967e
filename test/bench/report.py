"""
The figures of one benchmark run as rows of one table (and JSON): each row a figure, its
value and unit, what else was seen, and how it was measured. A figure whose feature or probe
did not run has no value and prints "n/a" with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path


class Report:
    """Rows in the order they were measured; `add` replaces a row of the same key."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, key: str, name: str, value: float | int | None, unit: str = "s",
            detail: str = "", method: str = "") -> None:
        row = {"key": key, "figure": name, "value": value, "unit": unit, "detail": detail,
               "method": method}
        self.rows = [r for r in self.rows if r["key"] != key] + [row]

    def missing(self, key: str, name: str, why: str, method: str = "") -> None:
        self.add(key, name, None, "", why, method)

    def extend(self, rows: list[dict]) -> None:
        for row in rows:
            self.add(row["key"], row["figure"], row["value"], row.get("unit", ""),
                     row.get("detail", ""), row.get("method", ""))

    def write(self, path: str | Path, **meta) -> None:
        Path(path).write_text(json.dumps({**meta, "figures": self.rows}, indent=2) + "\n")

    def table(self) -> str:
        """A Markdown table: figure, value, what else was seen, method."""
        lines = ["| figure | value | seen | method |", "| --- | --- | --- | --- |"]
        for row in self.rows:
            lines.append(f"| {row['figure']} | {value_text(row)} | {row['detail']} |"
                         f" {row['method']} |")
        return "\n".join(lines)


def value_text(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{value} {row['unit']}".strip()
