"""Read and check the manifest: the hospital's spreadsheet of videos, subjects and diagnoses.

Two kinds of trouble, answered differently:

* the manifest as a whole is unusable (unreadable file, not UTF-8, a required column missing):
  :class:`~hypomimia.errors.UserError` naming the problem and the fix;
* single rows are wrong (bad label, score out of range, duplicate id): the row is kept and
  carries its problems, so ingest quarantines it as ``invalid_row`` and reports every row.

The schema is documented in ``docs/data-format.md`` section 1.
"""

from __future__ import annotations

import difflib
import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.errors import UserError

log = logging.getLogger(__name__)

REQUIRED = ("video_id", "path", "subject_id", "session", "task", "label")
OPTIONAL = ("updrs_3_2", "hoehn_yahr", "age", "sex", "site", "camera", "split_group")
COLUMNS = REQUIRED + OPTIONAL
DIAGNOSES = ("pd", "control")  # the labels a subject can have; "unknown" awaits one
LABELS = (*DIAGNOSES, "unknown")
SEXES = {"f": "F", "m": "M", "other": "other"}
VIDEO_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
DOC = "docs/data-format.md section 1"


@dataclass
class Manifest:
    """Manifest rows with typed values (``None`` where empty) and the problems of each row."""

    source: Path
    rows: list[dict[str, Any]]
    problems: dict[int, list[str]] = field(default_factory=dict)  # row index -> problems
    ignored_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def read_manifest(path: str | Path) -> Manifest:
    """Read a CSV or Parquet manifest, check every row, and return rows plus per-row problems."""
    path = Path(path)
    frame = _read_table(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    _check_columns(frame, path)
    ignored = sorted(c for c in frame.columns if c not in COLUMNS)
    if ignored:
        # Extra columns (notes, names) are dropped rather than carried: they may hold identifying text.
        log.warning("manifest: ignoring %d unknown column(s): %s", len(ignored), ", ".join(ignored))
    if frame.empty:
        raise UserError(f"manifest {path.name} has no rows", "add one row per video (see " + DOC + ")")
    rows, problems = [], {}
    for i, raw in enumerate(frame.to_dict("records")):
        row, row_problems = _parse_row(raw)
        rows.append(row)
        if row_problems:
            problems[i] = row_problems
    _check_across_rows(rows, problems)
    return Manifest(source=path, rows=rows, problems=problems, ignored_columns=ignored)


def label_score_problem(row: dict[str, Any], control_max_updrs: int) -> str:
    """Why a row's label contradicts its scores ('' if consistent)."""
    label, updrs, hy = row.get("label"), row.get("updrs_3_2"), row.get("hoehn_yahr")
    if label == "control":
        if updrs is not None and updrs > control_max_updrs:
            return (
                f"labelled control but updrs_3_2 = {updrs} (controls have at most {control_max_updrs}); "
                "check the label or the score"
            )
        if hy:
            return f"labelled control but has a Hoehn & Yahr stage ({hy:g}); check the label"
    if label == "pd" and hy == 0:
        return "labelled pd but Hoehn & Yahr stage 0 (PD is stage 1 or more); check the label or the stage"
    return ""


# --- reading -------------------------------------------------------------------------------------------


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"manifest not found: {path}", "pass the path of the manifest CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as e:
            raise UserError(
                f"manifest {path.name} is not a readable Parquet file ({e})", "re-export it"
            ) from None
    if suffix in (".xlsx", ".xls", ".ods"):
        raise UserError(
            f"manifest {path.name} is a spreadsheet file", "save it as CSV (UTF-8) or Parquet; see " + DOC
        )
    if suffix not in (".csv", ".tsv", ".txt"):
        raise UserError(f"manifest {path.name}: unknown format '{suffix}'", "use a .csv or .parquet file")
    return _read_csv(path)


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark; accept it
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(
            f"manifest {path.name} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}; "
            "probably Latin-1/Windows-1252 from a spreadsheet)",
            f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > manifest-utf8.csv`",
        ) from None
    header = text.split("\n", 1)[0]
    # European spreadsheets export ';'-separated CSV; tab-separated exports exist too.
    sep = ","
    if "," not in header:
        sep = ";" if ";" in header else ("\t" if "\t" in header else ",")
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"manifest {path.name} is not valid CSV ({e})", "fix the file; see " + DOC) from None


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if not missing:
        return
    hints = []
    for col in missing:
        close = difflib.get_close_matches(col, [str(c) for c in frame.columns], n=1)
        hints.append(f"{col} (found '{close[0]}'?)" if close else col)
    raise UserError(
        f"manifest {path.name} lacks required column(s): {', '.join(hints)}",
        f"add or rename the columns; required: {', '.join(REQUIRED)} (see {DOC})",
    )


# --- rows ----------------------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str | None:
    if _empty(value):
        return None
    if isinstance(value, float) and value.is_integer():  # Parquet/Excel turn "1" into 1.0
        value = int(value)
    return str(value).strip()


def _number(value: Any, name: str, problems: list[str]) -> float | None:
    if _empty(value):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        problems.append(f"{name}: '{value}' is not a number")
        return None
    if math.isnan(number):
        return None
    return number


def _integer(value: Any, name: str, lo: int, hi: int, problems: list[str]) -> int | None:
    number = _number(value, name, problems)
    if number is None:
        return None
    if not number.is_integer() or not lo <= number <= hi:
        problems.append(f"{name}: {value} is not a whole number in {lo}-{hi}")
        return None
    return int(number)


def _parse_row(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    row: dict[str, Any] = {
        c: _text(raw.get(c)) for c in ("video_id", "path", "subject_id", "session", "task")
    }
    for col in ("video_id", "path", "subject_id", "session", "task", "label"):
        if _empty(raw.get(col)):
            problems.append(f"{col} is empty")
    if row["video_id"] is not None and not VIDEO_ID.fullmatch(row["video_id"]):
        problems.append(f"video_id '{row['video_id']}' must be 1-128 characters of A-Z a-z 0-9 _ . -")
    label = _text(raw.get("label"))
    row["label"] = label.lower() if label else None
    if label and row["label"] not in LABELS:
        problems.append(f"label '{label}' is not one of {', '.join(LABELS)}")
        row["label"] = None
    row["updrs_3_2"] = _integer(raw.get("updrs_3_2"), "updrs_3_2", 0, 4, problems)
    hy = _number(raw.get("hoehn_yahr"), "hoehn_yahr", problems)
    if hy is not None and not (hy == 0 or (1 <= hy <= 5 and (hy * 2).is_integer())):
        problems.append(f"hoehn_yahr: {raw.get('hoehn_yahr')} is not 1-5 in steps of 0.5 (or 0/empty)")
        hy = None
    row["hoehn_yahr"] = hy
    row["age"] = _integer(raw.get("age"), "age", 0, 120, problems)
    sex = _text(raw.get("sex"))
    row["sex"] = SEXES.get(sex.lower()) if sex else None
    if sex and row["sex"] is None:
        problems.append(f"sex '{sex}' is not one of F, M, other (or empty)")
    row["site"], row["camera"] = _text(raw.get("site")), _text(raw.get("camera"))
    # Subjects that must share a fold (twins, relatives, a phantom's matched pair); empty = the subject alone.
    row["split_group"] = _text(raw.get("split_group"))
    return row, problems


def _check_across_rows(rows: list[dict[str, Any]], problems: dict[int, list[str]]) -> None:
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows):
        vid = row["video_id"]
        if vid is None:
            continue
        if vid in first_row:
            problems.setdefault(i, []).append(f"video_id '{vid}' already used by row {first_row[vid] + 1}")
        else:
            first_row[vid] = i
    # One diagnosis per subject: a subject labelled both pd and control is a spreadsheet error.
    labels: dict[str, set[str]] = {}
    for row in rows:
        if row["subject_id"] and row["label"] in DIAGNOSES:
            labels.setdefault(row["subject_id"], set()).add(row["label"])
    for i, row in enumerate(rows):
        if len(labels.get(row["subject_id"] or "", ())) > 1:
            problems.setdefault(i, []).append(
                f"subject '{row['subject_id']}' is labelled both pd and control"
            )
