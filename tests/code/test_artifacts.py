from pathlib import Path

import pandas as pd
import pytest

from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError


def test_reads_a_table_with_the_needed_columns(tmp_path: Path):
    pd.DataFrame({"video_id": ["a"], "label": ["pd"]}).to_parquet(tmp_path / "t.parquet")
    assert list(read_stage_table(tmp_path, "t.parquet", "ingest", ["video_id"])["video_id"]) == ["a"]


@pytest.mark.parametrize(
    "content, problem",
    [(None, "no t.parquet in"), (b"not parquet", "not a readable Parquet table"), ("table", "lacks columns")],
)
def test_missing_damaged_or_incomplete_tables_name_the_fix(tmp_path: Path, content, problem):
    if content == "table":
        pd.DataFrame({"label": ["pd"]}).to_parquet(tmp_path / "t.parquet")
    elif content is not None:
        (tmp_path / "t.parquet").write_bytes(content)
    with pytest.raises(UserError, match=problem) as e:
        read_stage_table(tmp_path, "t.parquet", "ingest", ["video_id"])
    assert "hypomimia ingest" in e.value.fix
