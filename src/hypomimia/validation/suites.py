"""The gate's expectations, generated from the ``validate:`` block of params.yaml.

One suite per area (manifest, ingest, facetubes, folds, leakage, and voice when a voice table is
given); each validates one table (see
:mod:`hypomimia.validation.frames`). Every expectation has a stable name in ``meta.name`` (what
failure reports, logs and ``warning_only`` use) and a severity: ``error`` stops the pipeline,
``warning`` is reported only. Suites are written as GX JSON with ids derived from the names, so
the copies checked in under ``gx/expectations/`` change only when a threshold or check changes
(the rest of the context is in :mod:`hypomimia.validation.context`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypomimia.config.validate import ValidateConfig
from hypomimia.data.manifest import DIAGNOSES
from hypomimia.data.manifest import LABELS as MANIFEST_LABELS
from hypomimia.voice.schema import MEASURES as VOICE_MEASURES
from hypomimia.voice.schema import STATUSES as VOICE_STATUSES

AREAS = ("manifest", "ingest", "facetubes", "folds", "leakage", "voice")
OPTIONAL_AREAS = ("voice",)  # validated only when the run is given that table
LABELS = list(MANIFEST_LABELS)
TRAINING_LABELS = list(DIAGNOSES)
UPDRS_3_2 = [0, 1, 2, 3, 4]
HOEHN_YAHR = [0.0, *(1.0 + 0.5 * i for i in range(9))]  # 0 (control) or 1..5 in steps of 0.5
SEX = ["F", "M", "other", ""]
VIDEO_ID_REGEX = r"^[A-Za-z0-9_.-]{1,128}$"
SHA256_REGEX = r"^[0-9a-f]{64}$"
PHASH_REGEX = r"^[0-9a-f]{16}$"
# Fixed namespace: suite and expectation ids are uuid5(name), so regenerating a suite is a no-op.
ID_NAMESPACE = uuid.UUID("6f1c2a51-8d0e-4b8e-9a57-5e0d2b7c1a10")


@dataclass(frozen=True)
class Check:
    """One named expectation: GX class name, its kwargs, and why it matters (shown in Data Docs)."""

    name: str
    expectation: str
    kwargs: dict[str, Any]
    why: str
    severity: str = field(default="error")

    @property
    def area(self) -> str:
        return self.name.split(".", 1)[0]


def _between(name: str, column: str, low: float | None, high: float | None, why: str) -> Check:
    return Check(
        name, "ExpectColumnValuesToBeBetween", {"column": column, "min_value": low, "max_value": high}, why
    )


def _in_set(name: str, column: str, values: list, why: str) -> Check:
    return Check(name, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": values}, why)


def _regex(name: str, column: str, regex: str, why: str) -> Check:
    return Check(name, "ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex}, why)


def _has_rows(area: str) -> Check:
    return Check(
        f"{area}.has_rows",
        "ExpectTableRowCountToBeBetween",
        {"min_value": 1},
        "an empty table trains nothing",
    )


def _manifest(cfg: ValidateConfig) -> list[Check]:
    required = ["video_id", "subject_id", "session", "task", "label", "sha256"]
    return [
        _has_rows("manifest"),
        Check(
            "manifest.required_columns",
            "ExpectTableColumnsToMatchSet",
            {"column_set": required, "exact_match": False},
            "the manifest contract (docs/data-format.md section 1)",
        ),
        Check(
            "manifest.video_id_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "video_id"},
            "ids key every artifact",
        ),
        _regex("manifest.video_id_format", "video_id", VIDEO_ID_REGEX, "ids become file names"),
        Check(
            "manifest.subject_id_present",
            "ExpectColumnValuesToNotBeNull",
            {"column": "subject_id"},
            "folds group by subject",
        ),
        Check(
            "manifest.label_present",
            "ExpectColumnValuesToNotBeNull",
            {"column": "label"},
            "every video needs a label",
        ),
        _in_set("manifest.label_allowed", "label", LABELS, "labels are pd, control or unknown"),
        _in_set("manifest.updrs_3_2_allowed", "updrs_3_2", UPDRS_3_2, "MDS-UPDRS 3.2 is scored 0-4"),
        _in_set(
            "manifest.hoehn_yahr_allowed", "hoehn_yahr", HOEHN_YAHR, "Hoehn & Yahr is 1-5 in steps of 0.5"
        ),
        _between("manifest.age_range", "age", 0, 120, "ages are 0-120"),
        _in_set("manifest.sex_allowed", "sex", SEX, "sex is F, M, other or empty"),
        _in_set(
            "manifest.label_score_consistent",
            "label_score_consistent",
            [True],
            "a control with UPDRS 3.2 >= 2 or a Hoehn & Yahr stage is mislabelled",
        ),
        _between(
            "manifest.one_label_per_subject",
            "subject_n_labels",
            0,
            1,
            "a subject is pd or control, not both ('unknown' videos do not count)",
        ),
    ]


def _ingest(cfg: ValidateConfig) -> list[Check]:
    return [
        _in_set("ingest.codec_allowed", "codec", list(cfg.allowed_codecs), "codecs the decoder is tested on"),
        _between("ingest.fps_in_range", "nominal_fps", *cfg.fps_range, "frame rate the tubes resample from"),
        _between("ingest.resolution_min_side", "short_side", cfg.min_side, None, "too few pixels for a face"),
        _between(
            "ingest.duration_in_range", "duration_s", *cfg.duration_range_s, "clip length the model expects"
        ),
        _between(
            "ingest.decode_ratio", "decode_ratio", cfg.min_decode_ratio, None, "truncated or corrupt video"
        ),
        _regex("ingest.sha256_format", "sha256", SHA256_REGEX, "content hash keys the tube cache"),
        Check(
            "ingest.content_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "sha256"},
            "a video listed twice",
        ),
    ]


def _facetubes(cfg: ValidateConfig) -> list[Check]:
    pose = [
        _between(f"facetubes.{axis}_range", f"{axis}_range", 0, cfg.max_pose_range_deg, "head turned too far")
        for axis in ("yaw", "pitch", "roll")
    ]
    return [
        _has_rows("facetubes"),
        Check(
            "facetubes.video_id_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "video_id"},
            "one tube per video",
        ),
        _between(
            "facetubes.face_found_ratio",
            "face_found_ratio",
            cfg.min_face_found_ratio,
            1,
            "face lost too often",
        ),
        _between(
            "facetubes.face_size", "face_size_mean", cfg.min_face_size, 1, "face too small in the frame"
        ),
        _between("facetubes.sharpness", "blur_mean", cfg.min_blur, None, "blurred face: no fine motion left"),
        _between(
            "facetubes.brightness", "brightness_mean", *cfg.brightness_range, "under- or over-exposed face"
        ),
        *pose,
        _between("facetubes.frames_per_tube", "n_frames", cfg.min_tube_frames, None, "too short for a clip"),
        _in_set(
            "facetubes.tube_file_consistent", "tube_file_check", ["ok"], "the npz must match its table row"
        ),
        _regex(
            "facetubes.mean_frame_phash_format", "mean_frame_phash", PHASH_REGEX, "leakage check needs it"
        ),
    ]


def _folds(cfg: ValidateConfig) -> list[Check]:
    return [
        _has_rows("folds"),
        _in_set("folds.label_allowed", "label", TRAINING_LABELS, "folds hold pd and control only"),
        _between("folds.every_video_once_per_repeat", "video_rows_in_repeat", 1, 1, "a video in two folds"),
        _in_set(
            "folds.videos_accepted_by_ingest", "accepted_in_ingest", [True], "folds list ingested videos only"
        ),
        _in_set("folds.every_video_has_tube", "has_tube", [True], "videos without a face tube are skipped"),
        _between(
            "folds.no_subject_in_two_folds", "subject_fold_count", 1, 1, "identity leaks from train to test"
        ),
        _between("folds.every_fold_has_both_classes", "fold_n_classes", 2, 2, "a one-class fold has no AUC"),
        _between(
            "folds.class_balance",
            "fold_pd_share_deviation",
            0,
            cfg.max_fold_class_imbalance,
            "PD share of a fold far from the overall share",
        ),
        _between("folds.at_least_two_folds", "repeat_n_folds", 2, None, "cross-validation needs two folds"),
    ]


def _leakage(cfg: ValidateConfig) -> list[Check]:
    return [
        _between(
            "leakage.no_identical_content_across_folds",
            "sha256_fold_count",
            1,
            1,
            "the same video bytes in train and test",
        ),
        _between(
            "leakage.no_near_duplicate_across_folds",
            "near_duplicate_pixel_diff",
            cfg.near_duplicate_min_pixel_diff,
            None,
            f"a re-encoded copy of a video in train and test: mean-frame pHash within {cfg.near_duplicate_hamming}"
            " bits and the first second's mean frame nearly identical",
        ),
    ]


def _voice(cfg: ValidateConfig) -> list[Check]:
    required = ["video_id", "subject_id", "has_audio", "status", "reason", "voiced_s", "voiced_share",
                *VOICE_MEASURES, "feature_version"]  # fmt: skip
    return [
        _has_rows("voice"),
        Check(
            "voice.required_columns",
            "ExpectTableColumnsToMatchSet",
            {"column_set": required, "exact_match": False},
            "the voice table contract (docs/data-format.md section 4)",
        ),
        Check(
            "voice.video_id_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "video_id"},
            "one row per video",
        ),
        _in_set(
            "voice.every_accepted_video_has_row",
            "listed_in_voice",
            [True],
            "every accepted video is accounted for (a silent one as has_audio false)",
        ),
        _in_set(
            "voice.only_accepted_videos", "accepted_in_ingest", [True], "rows for videos ingest accepted only"
        ),
        _in_set("voice.has_audio_boolean", "has_audio", [True, False], "has_audio is true or false"),
        _in_set(
            "voice.status_allowed", "status", list(VOICE_STATUSES), "measured, no_audio, no_voice or failed"
        ),
        _in_set(
            "voice.status_consistent",
            "status_consistent",
            [True],
            "no_audio exactly when has_audio is false, measures only when measured, a reason when failed",
        ),
        _between("voice.voiced_share_range", "voiced_share", 0, 1, "a share of the clip"),
        _between(
            "voice.f0_mean_range", "f0_mean_hz", *cfg.voice_f0_range_hz, "outside the human voice range"
        ),
        _between(
            "voice.f0_sd_range", "f0_sd_st", *cfg.voice_f0_sd_range_st, "pitch tracking failed (octave jumps)"
        ),
        _between("voice.hnr_range", "hnr_db", *cfg.voice_hnr_range_db, "not a voice, or a broken measure"),
        _between(
            "voice.intensity_range",
            "intensity_db",
            *cfg.voice_intensity_range_db,
            "clipped or near-silent audio (or a wrong gain)",
        ),
    ]


def checks(cfg: ValidateConfig) -> list[Check]:
    """Every expectation of the gate, in report order, with severities from ``cfg.warning_only``."""
    all_checks = [
        *_manifest(cfg),
        *_ingest(cfg),
        *_facetubes(cfg),
        *_folds(cfg),
        *_leakage(cfg),
        *_voice(cfg),
    ]
    demoted = set(cfg.warning_only)
    return [
        Check(c.name, c.expectation, c.kwargs, c.why, "warning" if c.name in demoted else "error")
        for c in all_checks
    ]


def unknown_names(cfg: ValidateConfig) -> list[str]:
    """Names in ``warning_only`` that match no expectation (a typo would silently keep it an error)."""
    known = {c.name for c in checks(cfg)}
    return sorted(set(cfg.warning_only) - known)


def build_suites(cfg: ValidateConfig) -> dict[str, Any]:
    """GX ExpectationSuite per area, with name-derived ids."""
    import great_expectations as gx

    suites = {}
    for area in AREAS:
        area_checks = [c for c in checks(cfg) if c.area == area]
        expectations = [
            getattr(gx.expectations, c.expectation)(
                **c.kwargs,
                meta={"name": c.name, "severity": c.severity},
                notes=c.why,
                severity="critical" if c.severity == "error" else "warning",
            )
            for c in area_checks
        ]
        suite = gx.ExpectationSuite(
            name=area,
            expectations=expectations,
            id=str(uuid.uuid5(ID_NAMESPACE, f"suite:{area}")),
            notes=f"hypomimia gate, area '{area}'; generated from params.yaml (validate:) -- do not edit by hand",
        )
        # GX refuses expectations that arrive with ids; set them once they belong to the suite.
        for expectation, c in zip(suite.expectations, area_checks, strict=True):
            expectation.id = str(uuid.uuid5(ID_NAMESPACE, f"expectation:{c.name}"))
        suites[area] = suite
    return suites


def suite_files(cfg: ValidateConfig) -> dict[str, str]:
    """File name -> JSON text, exactly as GX's file store writes suites (sorted keys, indent 2)."""
    from great_expectations.core.expectation_suite import ExpectationSuiteSchema

    schema = ExpectationSuiteSchema()
    return {
        f"{area}.json": schema.dumps(suite, indent=2, sort_keys=True)
        for area, suite in build_suites(cfg).items()
    }
