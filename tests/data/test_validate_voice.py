"""The gate's voice area: a valid voice table passes; a broken one fails loudly, each break named."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypomimia import cli
from hypomimia.config.validate import ValidateConfig
from hypomimia.stages.validate import run
from hypomimia.validation import suites
from hypomimia.voice.schema import FEATURE_VERSION, MEASURES
from tests.helpers_validate import make_valid

PLAUSIBLE = {
    "f0_mean_hz": 180.0,
    "f0_sd_st": 2.5,
    "intensity_db": 68.0,
    "jitter_pct": 0.6,
    "shimmer_pct": 3.5,
    "hnr_db": 18.0,
    "vowel_space_hz2": 40000.0,
    "speech_rate_syl_s": 4.2,
}


def write_voice(ingest: Path, out: Path) -> Path:
    """A voice table as the stage writes it: every accepted video; the first three silent."""
    assert set(PLAUSIBLE) == set(MEASURES), "the fixture must hold every measure of the contract"
    ingested = pd.read_parquet(ingest / "ingested.parquet")
    rows = []
    for i, r in enumerate(ingested[ingested["status"] == "accepted"].sort_values("video_id").itertuples()):
        silent = i < 3
        rows.append(
            {
                "video_id": r.video_id,
                "subject_id": r.subject_id,
                "has_audio": not silent,
                "status": "no_audio" if silent else "measured",
                "reason": "",
                "voiced_s": np.nan if silent else 2.5,
                "voiced_share": np.nan if silent else 0.62,
                **{m: np.nan if silent else v + i for m, v in PLAUSIBLE.items()},
                "feature_version": FEATURE_VERSION,
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(out / "voice.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("voice_gate")
    ingest, tubes = make_valid(root)
    return ingest, tubes, write_voice(ingest, root / "voice")


def test_a_valid_voice_table_passes_as_a_sixth_area(valid, tmp_path):
    ingest, tubes, voice = valid
    result = run(ValidateConfig(), ingest, tubes, tmp_path / "out", voice_dir=voice)
    assert result.success, [(o.name, o.observed) for o in result.failed_errors]
    names = [c.name for c in suites.checks(ValidateConfig()) if c.area == "voice"]
    assert [o.name for o in result.outcomes if o.area == "voice"] == names and len(names) == 13
    summary = json.loads(result.summary_path.read_text())
    assert summary["checkpoints"]["voice"]["passed"] == names
    assert summary["provenance"]["inputs"]["voice"]["path"].endswith("voice.parquet")


def _main(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["hypomimia", *args])
    with pytest.raises(SystemExit) as info:
        cli.app()
    return info.value.code


def test_a_broken_voice_table_stops_the_gate_naming_every_break(
    valid, tmp_path, monkeypatch, capsys, repo_root
):
    ingest, tubes, voice = valid
    broken = shutil.copytree(voice, tmp_path / "voice")
    table = pd.read_parquet(broken / "voice.parquet")
    measured = table.index[table["status"] == "measured"]
    table.loc[measured[0], "f0_mean_hz"] = 900.0  # an octave error
    table.loc[measured[1], "f0_sd_st"] = 30.0
    table.loc[measured[2], "hnr_db"] = 55.0
    table.loc[measured[3], "intensity_db"] = 5.0
    table.loc[measured[4], "voiced_share"] = 1.4
    table.loc[table.index[0], "f0_mean_hz"] = 150.0  # a 'no_audio' row with a measure
    table.loc[table.index[1], "status"] = "silent"  # not a status
    table = pd.concat([table.drop(index=measured[5]), table.loc[[measured[6]]]])  # one lost, one twice
    table.to_parquet(broken / "voice.parquet", index=False)

    code = _main(
        monkeypatch,
        "validate",
        "--ingest", str(ingest),
        "--tubes", str(tubes),
        "--voice", str(broken),
        "--out", str(tmp_path / "out"),
        "--params", str(repo_root / "params.yaml"),
    )  # fmt: skip
    assert code == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["failed_errors"]) == {
        "voice.f0_mean_range",
        "voice.f0_sd_range",
        "voice.hnr_range",
        "voice.intensity_range",
        "voice.voiced_share_range",
        "voice.status_consistent",
        "voice.status_allowed",
        "voice.every_accepted_video_has_row",
        "voice.video_id_unique",
    }
    failed = {f["name"]: f["observed"] for f in summary["checkpoints"]["voice"]["failed"]}
    lost = pd.read_parquet(voice / "voice.parquet").loc[measured[5], "video_id"]
    assert failed["voice.every_accepted_video_has_row"]["unexpected_count"] == 1
    assert lost in json.dumps(failed["voice.every_accepted_video_has_row"])  # the lost video, by id
    assert "voice.every_accepted_video_has_row" in " ".join(capsys.readouterr().err.split())


def test_a_voice_table_without_its_columns_fails_the_contract(valid, tmp_path):
    ingest, tubes, voice = valid
    broken = tmp_path / "voice"
    broken.mkdir()
    pd.read_parquet(voice / "voice.parquet").drop(columns=["has_audio", "hnr_db"]).to_parquet(
        broken / "voice.parquet", index=False
    )
    result = run(ValidateConfig(), ingest, tubes, tmp_path / "out", raise_on_error=False, voice_dir=broken)
    assert not result.success
    assert {"voice.required_columns", "voice.has_audio_boolean", "voice.hnr_range"} <= {
        o.name for o in result.failed_errors
    }


def test_an_unreadable_voice_table_is_a_user_error(valid, tmp_path, monkeypatch, capsys):
    ingest, tubes, _ = valid
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "voice.parquet").write_bytes(b"not parquet")
    code = _main(monkeypatch, "validate", "--ingest", str(ingest), "--tubes", str(tubes),
                 "--voice", str(tmp_path / "voice"), "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 2 and "re-run 'hypomimia voice'" in " ".join(capsys.readouterr().err.split())
