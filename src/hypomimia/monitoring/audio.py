"""Audio drift (issue 25; docs/monitoring.md, "Audio drift"): the sound of a window against the reference's.

A new microphone, room or gain setting changes what the voice model will hear without changing a
pixel. The window tables carry each clip's audio facts (``has_audio`` and ``audio_*``: from ingest
and the voice table for a batch, from the prediction log for the endpoint), and these tests join the
window's Bonferroni family:

* per numeric fact (:data:`NUMERIC`: loudness in LUFS, SNR in dB, the share of the voice's power
  above 4 kHz, the clipped share), a two-sample K-S test on one value per subject, the median over
  the subject's clips **that have audio**;
* the sample rate (:data:`CATEGORICAL`), a two-sample permutation chi-square of the subjects' rates
  (the label test of :mod:`hypomimia.monitoring.drift`), over clips with audio too;
* the share of clips with audio (``audio_share``): per subject, the share of its clips with a sound
  track, K-S (ties make it conservative). It counts every clip whose ``has_audio`` is known, so a
  window whose uploads lost their sound is a finding (like lost videos), not a skipped test;
* the voice model's outputs (:data:`VOICE_OUTPUT`, ``p_pd_voice``: the voice stream's own P(PD)),
  K-S on the subjects' means over the clips the voice stream heard (those with a ``p_pd_voice``,
  whatever ``has_audio`` says). The window's comes from the prediction log (the answer's
  ``modalities.voice.p_pd``, logged by ``predictor.log_modalities``), the reference's and a batch's
  from :class:`hypomimia.monitoring.scoring.Scorer`, which reads the same number off the same
  ``answer()`` given the voice table's rows. It is a model output: a drift retrains.

The tests over clips with audio are **skipped, not failed**, with the reason in ``drift.json``,
when the window or the reference has fewer than ``monitor.audio_min_subjects`` subjects with audio
(K-S cannot reach the per-test level on a handful of people: 4 vs 8 subjects bottom out at
p = 2/495). The voice model's outputs count their own subjects (those with a voice P(PD)), with
the same minimum: fewer on either side -> skipped with the reason (``drift.json``'s
``audio.voice_model``); none on both sides -> not tested, the model has no voice stream. A column
absent from one side (no voice table for the reference: no SNR) or constant and equal on both
(every clip at 16 kHz) is shown, not tested. ``audio_intensity_db`` and
``audio_f0_sd_st`` are shown as medians only: intensity repeats loudness, and F0 SD is the voice
model's input, whose drift its outputs will show.

The decision counts drifted audio facts as quality columns (the recording chain, like the camera's):
one -> warn, ``monitor.retrain_columns`` (2) or more -> retrain; a drifted voice-model output is
model-side -> retrain (:mod:`hypomimia.monitoring.decision`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hypomimia.config.monitor import MonitorConfig
from hypomimia.monitoring.window import subject_keys

NUMERIC = ("audio_loudness_lufs", "audio_snr_db", "audio_hf_share_db", "audio_clipped_share")
CATEGORICAL = ("audio_sample_rate",)
SHARE = "audio_share"  # per subject: the share of its clips that have a sound track
SHOWN = ("audio_intensity_db", "audio_f0_sd_st")  # medians in drift.json, not tested
VOICE_OUTPUT = "p_pd_voice"  # the voice stream's P(PD): the log's voice.p_pd, the Scorer's on a batch
NO_VOICE_STREAM = "not tested: the model has no voice stream (no voice P(PD) in the window or the reference)"
# facts that only the voice table (reference) or the endpoint's listen() (log) give
FROM_VOICE_TABLE = ("audio_snr_db", "audio_hf_share_db", "audio_intensity_db", "audio_f0_sd_st")


@dataclass
class AudioPlan:
    """Which audio tests a window runs, and why the others do not."""

    numeric: list[str] = field(default_factory=list)  # K-S, over subjects with audio
    categorical: list[str] = field(default_factory=list)  # permutation chi-square, subjects with audio
    share: bool = False  # K-S on the subjects' share of clips with audio
    voice: list[str] = field(default_factory=list)  # the voice model's outputs, K-S on subjects' means
    shown: list[str] = field(default_factory=list)  # present, reported, not tested
    skipped: str = ""  # why the tests over clips with audio do not run ('' when they do)
    voice_skipped: str = ""  # why the voice model's outputs are not tested for too few subjects
    notes: dict[str, str] = field(default_factory=dict)  # column -> why it is not tested
    counts: dict[str, Any] = field(default_factory=dict)
    voice_counts: dict[str, Any] = field(default_factory=dict)  # clips and subjects with a voice P(PD)

    @property
    def tests(self) -> int:
        return len(self.numeric) + len(self.categorical) + int(self.share) + len(self.voice)

    @property
    def columns(self) -> list[str]:
        """Every column the subject tables carry."""
        return [*self.numeric, *self.categorical, *([SHARE] if self.share else []), *self.voice, *self.shown]


def has_audio(df: pd.DataFrame) -> pd.Series:
    """1.0 / 0.0 per clip, NaN where unknown (a log record from before issue 25, a tube upload)."""
    if "has_audio" not in df:
        return pd.Series(np.nan, index=df.index)
    return df["has_audio"].map({True: 1.0, False: 0.0}).astype(float)  # 1/0 and numpy bools hash alike


def _with_audio(df: pd.DataFrame) -> pd.DataFrame:
    return df[has_audio(df) == 1.0]


def _values(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df:
        return pd.Series(dtype=float)
    if col in CATEGORICAL:
        return df[col].dropna().astype(float).astype("int64").astype(str)
    return pd.to_numeric(df[col], errors="coerce").dropna()


def _subjects(df: pd.DataFrame) -> int:
    return len(set(subject_keys(df))) if len(df) else 0


def plan(reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig) -> AudioPlan:
    """The audio tests of a window (see the module docstring for the rules)."""
    out = AudioPlan()
    ref_known, cur_known = has_audio(reference).notna(), has_audio(current).notna()
    ref_audio, cur_audio = _with_audio(reference), _with_audio(current)
    out.counts = {
        "reference": {"clips_known": int(ref_known.sum()), "clips_with_audio": len(ref_audio),
                      "subjects_with_audio": _subjects(ref_audio)},
        "current": {"clips_known": int(cur_known.sum()), "clips_with_audio": len(cur_audio),
                    "subjects_with_audio": _subjects(cur_audio)},
    }  # fmt: skip
    if ref_known.any() and cur_known.any():
        both = pd.concat([has_audio(reference)[ref_known], has_audio(current)[cur_known]])
        if both.nunique() > 1:
            out.share = True
        else:
            out.shown.append(SHARE)
            out.notes[SHARE] = f"constant and equal in both ({both.iloc[0]:.0%} of the clips have audio)"
    else:
        side = "reference" if not ref_known.any() else "window"
        out.notes[SHARE] = f"the {side} records no audio facts (ingest or a log from before issue 25)"
    _plan_voice(out, reference, current, cfg)  # its own subjects: not skipped with the audio facts
    need = cfg.audio_min_subjects
    short = _too_few(out.counts, "audio", need)
    if short:
        out.skipped = (
            f"too few clips with audio: {' and '.join(short)} have audio, monitor.audio_min_subjects is "
            f"{need}; loudness, SNR, bandwidth, clipping and sample rate are not tested"
        )
        return out
    for col in (*NUMERIC, *CATEGORICAL, *SHOWN):
        r, c = _values(ref_audio, col), _values(cur_audio, col)
        if r.empty or c.empty:
            side = "reference" if r.empty else "window"
            out.notes[col] = f"not in the {side}" + (
                " (pass the voice table: hypomimia monitor --voice work/voice)"
                if side == "reference" and col in FROM_VOICE_TABLE
                else ""
            )
            continue
        if col in SHOWN:
            out.shown.append(col)
        elif pd.concat([r, c]).nunique() == 1:
            out.shown.append(col)
            out.notes[col] = f"constant and equal in both ({r.iloc[0]})"
        elif col in CATEGORICAL:
            out.categorical.append(col)
        else:
            out.numeric.append(col)
    return out


def _too_few(counts: dict[str, dict[str, int]], what: str, need: int) -> list[str]:
    """The sides (window, reference) with fewer than ``need`` subjects having ``what`` (audio, voice_p)."""
    return [
        f"{name} {c[f'clips_with_{what}']} clips of {c[f'subjects_with_{what}']} subjects"
        for name, c in (("window", counts["current"]), ("reference", counts["reference"]))
        if c[f"subjects_with_{what}"] < need
    ]


def _voiced(df: pd.DataFrame) -> np.ndarray:
    """Per clip: whether the voice stream heard it (it has a voice P(PD))."""
    if VOICE_OUTPUT not in df:
        return np.zeros(len(df), dtype=bool)
    return pd.to_numeric(df[VOICE_OUTPUT], errors="coerce").notna().to_numpy()


def _plan_voice(out: AudioPlan, reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig) -> None:
    """Whether the voice model's outputs are tested: over the clips with a voice P(PD) on each side."""
    for name, df in (("reference", reference), ("current", current)):
        heard = _voiced(df)
        out.voice_counts[name] = {"clips_with_voice_p": int(heard.sum()),
                                  "subjects_with_voice_p": len(set(subject_keys(df)[heard]))}  # fmt: skip
    ref_n, cur_n = (out.voice_counts[s]["subjects_with_voice_p"] for s in ("reference", "current"))
    if not ref_n and not cur_n:
        out.notes[VOICE_OUTPUT] = NO_VOICE_STREAM
        return
    need = cfg.audio_min_subjects
    short = _too_few(out.voice_counts, "voice_p", need)
    if short:
        hint = (
            " (a model with the voice scores the reference with its voice table: hypomimia monitor --voice)"
            if not ref_n
            else ""
        )
        out.voice_skipped = (
            f"too few subjects with a voice P(PD): {' and '.join(short)} have one, monitor.audio_min_subjects "
            f"is {need}; the voice model's outputs (p_pd_voice) are not tested{hint}"
        )
        out.notes[VOICE_OUTPUT] = out.voice_skipped
        return
    r, c = _values(reference, VOICE_OUTPUT), _values(current, VOICE_OUTPUT)
    if pd.concat([r, c]).nunique() == 1:
        out.notes[VOICE_OUTPUT] = f"constant and equal in both ({r.iloc[0]})"
        return
    out.voice.append(VOICE_OUTPUT)


def subject_columns(df: pd.DataFrame, audio: AudioPlan, keys: np.ndarray) -> pd.DataFrame:
    """One row per subject in sorted ``keys`` order (as :func:`drift.subject_table` orders them): the
    median of each numeric fact over the subject's clips with audio, their most common sample rate (as
    text), the share of its clips with audio, and the mean voice-model output over the clips the voice
    stream heard. NaN / None for a subject without audio (or without a voice P(PD))."""
    order = sorted(set(keys))
    out = pd.DataFrame(index=order)
    flag = has_audio(df).to_numpy()
    frame = df.assign(_subject=keys, _audio=flag)
    heard = frame[frame["_audio"] == 1.0]
    shown = [c for c in audio.shown if c != SHARE]
    for col in [*audio.numeric, *(c for c in shown if c not in CATEGORICAL)]:
        out[col] = pd.to_numeric(heard[col], errors="coerce").groupby(heard["_subject"]).median()
    for col in audio.voice:  # the mean skips clips without a voice P(PD)
        out[col] = pd.to_numeric(frame[col], errors="coerce").groupby(frame["_subject"]).mean()
    for col in [*audio.categorical, *(c for c in shown if c in CATEGORICAL)]:
        rates = _values(heard, col)
        out[col] = rates.groupby(heard.loc[rates.index, "_subject"]).agg(_mode) if len(rates) else None
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    if audio.share or SHARE in audio.shown:
        known = frame[frame["_audio"].notna()]
        out[SHARE] = known.groupby("_subject")["_audio"].mean()
    return out.reset_index(drop=True)


def _mode(values: pd.Series) -> str:
    counts = values.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def summarize(
    audio: AudioPlan,
    values: dict[str, dict],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ref_s: pd.DataFrame,
    cur_s: pd.DataFrame,
) -> dict[str, Any]:
    """``drift.json``'s ``audio`` block: per column whether it was tested, its p-value, whether it
    drifted, and the reference's and window's medians (or shares), plus the skip reason and counts."""
    ref_audio, cur_audio = _with_audio(reference), _with_audio(current)
    columns: dict[str, Any] = {}
    tested = {*audio.numeric, *audio.categorical, *audio.voice, *([SHARE] if audio.share else [])}
    for col in audio.columns:
        v = values.get(col, {})
        entry: dict[str, Any] = {
            "kind": "categorical" if col in CATEGORICAL else "share" if col == SHARE
            else "voice_model" if col == VOICE_OUTPUT else "numeric",
            "tested": col in tested,
            "p_value": v.get("score") if col in tested else None,
            "drifted": bool(col in tested and v.get("drifted")),
            "note": audio.notes.get(col, ""),
        }  # fmt: skip
        if col in CATEGORICAL:
            entry["reference_shares"] = _shares(_values(ref_audio, col))
            entry["current_shares"] = _shares(_values(cur_audio, col))
        elif col == SHARE:
            entry["reference_share"] = _mean(has_audio(reference))
            entry["current_share"] = _mean(has_audio(current))
            entry["reference_subject_median"] = _median(ref_s.get(SHARE))
            entry["current_subject_median"] = _median(cur_s.get(SHARE))
        elif col == VOICE_OUTPUT:  # over the clips the voice stream heard
            entry["reference_median"] = _median(_values(reference, col))
            entry["current_median"] = _median(_values(current, col))
        else:
            entry["reference_median"] = _median(_values(ref_audio, col))
            entry["current_median"] = _median(_values(cur_audio, col))
        columns[col] = entry
    return {
        "tests": audio.tests,
        "skipped": audio.skipped,
        "counts": audio.counts,
        "columns": columns,
        "not_tested": {c: n for c, n in audio.notes.items() if c not in columns},
        "voice_model": {
            "tested": bool(audio.voice),
            "skipped": audio.voice_skipped,
            "note": audio.notes.get(VOICE_OUTPUT, ""),
            "counts": audio.voice_counts,
        },
    }


def _shares(values: pd.Series) -> dict[str, float]:
    n = max(len(values), 1)
    return {str(k): round(float(v) / n, 4) for k, v in values.value_counts().sort_index().items()}


def _mean(s: pd.Series) -> float | None:
    s = s.dropna()
    return round(float(s.mean()), 4) if len(s) else None


def _median(s: pd.Series | None) -> float | None:
    if s is None:
        return None
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else None
