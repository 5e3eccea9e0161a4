"""Manifest reading: whole-file errors raise UserError with a fix; row errors are collected per row."""

from pathlib import Path

import pandas as pd
import pytest

from hypomimia.data.manifest import label_score_problem, read_manifest
from hypomimia.errors import UserError

HEADER = "video_id,path,subject_id,session,task,label,updrs_3_2,hoehn_yahr,age,sex\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER, name: str = "manifest.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def test_valid_rows_are_typed(tmp_path):
    m = read_manifest(_csv(tmp_path, "v1,a.mp4,S1,s1,rest,PD,2,2.5,67,f\nv2,b.mp4,S2,s1,smile,control,,,,\n"))
    assert m.problems == {}
    first = {k: m.rows[0][k] for k in ("video_id", "label", "updrs_3_2", "hoehn_yahr", "age", "sex")}
    assert first == {
        "video_id": "v1",
        "label": "pd",
        "updrs_3_2": 2,
        "hoehn_yahr": 2.5,
        "age": 67,
        "sex": "F",
    }
    assert m.rows[1]["updrs_3_2"] is None and m.rows[1]["hoehn_yahr"] is None


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("v1,a.mp4,S1,s1,rest,PDD,,,,", "label 'PDD' is not one of"),
        ("v1,a.mp4,S1,s1,rest,pd,7,,,", "updrs_3_2: 7 is not a whole number in 0-4"),
        ("v1,a.mp4,S1,s1,rest,pd,2.5,,,", "updrs_3_2: 2.5 is not a whole number"),
        ("v1,a.mp4,S1,s1,rest,pd,two,,,", "updrs_3_2: 'two' is not a number"),
        ("v1,a.mp4,S1,s1,rest,pd,,2.3,,", "hoehn_yahr: 2.3 is not 1-5 in steps of 0.5"),
        ("v1,a.mp4,S1,s1,rest,pd,,,130,", "age: 130 is not a whole number in 0-120"),
        ("v1,a.mp4,S1,s1,rest,pd,,,,x", "sex 'x' is not one of F, M, other"),
        ("v 1,a.mp4,S1,s1,rest,pd,,,,", "video_id 'v 1' must be"),
        ("v1,,S1,s1,rest,pd,,,,", "path is empty"),
        ("v1,a.mp4,,s1,rest,pd,,,,", "subject_id is empty"),
    ],
)
def test_row_problems_are_specific(tmp_path, row, expected):
    m = read_manifest(_csv(tmp_path, row + "\nok,b.mp4,S2,s1,rest,control,,,,\n"))
    assert list(m.problems) == [0], "only the bad row has problems"
    assert any(expected in p for p in m.problems[0]), m.problems[0]


def test_duplicate_video_id_and_conflicting_subject_labels(tmp_path):
    body = "v1,a.mp4,S1,s1,rest,pd,,,,\nv1,b.mp4,S2,s1,rest,pd,,,,\nv3,c.mp4,S3,s1,rest,pd,,,,\n"
    body += "v4,d.mp4,S3,s2,rest,control,,,,\nv5,e.mp4,S3,s3,rest,unknown,,,,\n"
    m = read_manifest(_csv(tmp_path, body))
    assert m.problems[1] == ["video_id 'v1' already used by row 1"]
    assert 0 not in m.problems
    for i in (2, 3, 4):  # every row of the subject labelled both ways
        assert "subject 'S3' is labelled both pd and control" in m.problems[i]


def test_missing_required_column_names_it_and_suggests(tmp_path):
    header = "video_id,path,subject,session,task,label\n"
    with pytest.raises(UserError) as err:
        read_manifest(_csv(tmp_path, "v1,a.mp4,S1,s1,rest,pd\n", header=header))
    assert "subject_id (found 'subject'?)" in err.value.problem
    assert "required" in err.value.fix


def test_latin1_manifest_is_rejected_with_the_line_and_a_fix(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_bytes((HEADER + "v1,vidéo.mp4,S1,s1,rest,pd,,,,\n").encode("latin-1"))
    with pytest.raises(UserError) as err:
        read_manifest(path)
    assert "not UTF-8" in err.value.problem and "line 2" in err.value.problem
    assert "iconv" in err.value.fix


def test_excel_style_csv_bom_and_semicolons_are_read(tmp_path):
    path = tmp_path / "manifest.csv"
    text = HEADER.replace(",", ";") + "v1;vidéo.mp4;S1;s1;rest;pd;1;1,5;;\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    m = read_manifest(path)
    assert m.problems == {}
    assert m.rows[0]["video_id"] == "v1" and m.rows[0]["path"] == "vidéo.mp4"
    assert m.rows[0]["hoehn_yahr"] == 1.5  # decimal comma


def test_parquet_manifest_with_numeric_columns(tmp_path):
    path = tmp_path / "manifest.parquet"
    pd.DataFrame(
        {
            "video_id": ["v1", "v2"],
            "path": ["a.mp4", "b.mp4"],
            "subject_id": ["S1", "S2"],
            "session": ["s1", "s1"],
            "task": ["rest", "rest"],
            "label": ["pd", "control"],
            "updrs_3_2": [3.0, None],  # a float column with a gap, as pandas writes it
            "notes": ["private", "text"],
        }
    ).to_parquet(path)
    m = read_manifest(path)
    assert m.problems == {}
    assert m.rows[0]["updrs_3_2"] == 3 and m.rows[1]["updrs_3_2"] is None
    assert m.ignored_columns == ["notes"] and "notes" not in m.rows[0]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "manifest not found"),
        ("manifest.xlsx", b"PK\x03\x04", "spreadsheet file"),
        ("manifest.parquet", b"not parquet", "not a readable Parquet file"),
        ("manifest.csv", HEADER.encode(), "has no rows"),
        ("manifest.json", b"{}", "unknown format"),
    ],
)
def test_unusable_manifest_files_raise_user_errors(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=expected):
        read_manifest(path)


@pytest.mark.parametrize(
    ("label", "updrs", "hy", "inconsistent"),
    [
        ("control", 3, None, True),
        ("control", 2, None, True),
        ("control", 1, None, False),  # slight masking is common in healthy elderly people
        ("control", None, 2.0, True),
        ("control", 0, 0.0, False),
        ("pd", 0, None, False),  # early PD without hypomimia is plausible
        ("pd", 2, 0.0, True),
        ("unknown", 4, 3.0, False),
    ],
)
def test_label_score_consistency(label, updrs, hy, inconsistent):
    problem = label_score_problem({"label": label, "updrs_3_2": updrs, "hoehn_yahr": hy}, control_max_updrs=1)
    assert bool(problem) is inconsistent
