"""Shared tail of the benchmark scripts: write the result JSON (creating its folder) and say where."""
from __future__ import annotations

import json
import os


def write_result(result: dict, path: str) -> None:
    """Writes `result` as indented JSON to `path` (no-op for an empty path) and prints the path."""
    if not path:
        return
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(f"written {path}")
