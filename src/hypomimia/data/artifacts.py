"""Reading another stage's output table, with the same clear errors everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hypomimia.errors import UserError


def read_stage_table(folder: Path, name: str, produced_by: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """``folder/name`` as a DataFrame; a missing, damaged or incomplete table is a UserError naming the fix.

    ``produced_by`` is the stage (CLI command) that writes the table.
    """
    path = Path(folder) / name
    if not path.is_file():
        raise UserError(
            f"no {name} in {folder}", f"run 'hypomimia {produced_by}' first, or pass the right folder"
        )
    try:
        table = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise UserError(
            f"{path} is not a readable Parquet table ({e})", f"re-run 'hypomimia {produced_by}'"
        ) from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(
            f"{name} lacks columns {missing}", f"re-run 'hypomimia {produced_by}' (see docs/data-format.md)"
        )
    return table
