"""Subject-grouped, label-stratified k-fold splits (with repeats).

Leakage by subject is the classic error in video biomarker studies: clips of the same
person in training and test let a model recognise the *person* instead of the disease.
So folds are drawn over subjects, never over videos: every video of a subject lands in
the same fold, and each fold holds about the same share of PD and control subjects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from hypomimia.data.manifest import DIAGNOSES
from hypomimia.errors import UserError

FOLD_LABELS = DIAGNOSES
FOLD_COLUMNS = ["video_id", "subject_id", "label", "repeat", "fold"]


def subjects_per_label(videos: pd.DataFrame) -> dict[str, int]:
    """Number of distinct subjects per fold label (pd, control) among ``videos``."""
    labelled = videos[videos["label"].isin(FOLD_LABELS)]
    counts = labelled.groupby("label")["subject_id"].nunique()
    return {label: int(counts.get(label, 0)) for label in FOLD_LABELS}


def check_feasible(videos: pd.DataFrame, k: int, what: str = "accepted videos") -> None:
    """Raise UserError when some label has fewer subjects than folds (a fold would lack that class)."""
    counts = subjects_per_label(videos)
    if sum(counts.values()) == 0:
        return  # nothing labelled (e.g. a scoring-only batch): no folds, no error
    fewest = min(counts.values())
    if fewest < k:
        short = ", ".join(f"{n} {label}" for label, n in counts.items())
        if fewest >= 2:
            fix = f"lower ingest.folds to <= {fewest} in params.yaml, or add subjects"
        else:
            fix = f"add subjects of both labels (at least {k} pd and {k} control)"
        raise UserError(
            f"{what} have {short} subject(s): too few for ingest.folds = {k} (every fold needs both labels)",
            fix,
        )


def make_folds(videos: pd.DataFrame, k: int, repeats: int, seed: int) -> pd.DataFrame:
    """Assign each pd/control video a held-out fold per repeat.

    ``videos`` needs columns video_id, subject_id, label, and optionally split_group: subjects sharing
    a split_group (twins, relatives, matched pairs) always share a fold. Rows labelled ``unknown`` get
    no fold. The split depends only on the set of subjects, their labels, groups and the seed, not on
    row order.
    """
    cols = ["video_id", "subject_id", "label"] + (["split_group"] if "split_group" in videos else [])
    labelled = videos[videos["label"].isin(FOLD_LABELS)][cols]
    if labelled.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c in ("repeat", "fold") else "str") for c in FOLD_COLUMNS}
        )
    check_feasible(labelled, k)
    subjects = labelled.drop_duplicates("subject_id").sort_values("subject_id", ignore_index=True)
    groups = _split_groups(subjects)
    grouped = groups.nunique() < len(subjects)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=repeats)
    parts = []
    for repeat, repeat_seed in enumerate(seeds):
        if grouped:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(repeat_seed))
            splits = splitter.split(subjects["subject_id"], subjects["label"], groups)
        else:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=int(repeat_seed))
            splits = splitter.split(subjects["subject_id"], subjects["label"])
        fold_of = {}
        for fold, (_, held_out) in enumerate(splits):
            fold_of.update(dict.fromkeys(subjects["subject_id"].iloc[held_out], fold))
        part = labelled.assign(repeat=repeat, fold=labelled["subject_id"].map(fold_of).astype("int64"))
        parts.append(part)
    folds = pd.concat(parts, ignore_index=True).sort_values(["repeat", "video_id"], ignore_index=True)
    assert_no_subject_leak(folds)
    if grouped:
        spread = folds.assign(
            g=folds["subject_id"].map(dict(zip(subjects["subject_id"], groups, strict=True)))
        )
        if (spread.groupby(["repeat", "g"])["fold"].nunique() > 1).any():
            raise AssertionError("a split_group spans two folds")
    return folds[FOLD_COLUMNS]


def _split_groups(subjects: pd.DataFrame) -> pd.Series:
    """The fold unit of each subject: its split_group, or the subject itself where none is given."""
    if "split_group" not in subjects:
        return subjects["subject_id"]
    group = subjects["split_group"].astype("object")
    return group.where(group.notna() & (group != ""), subjects["subject_id"])


def assert_no_subject_leak(folds: pd.DataFrame) -> None:
    """Every subject sits in exactly one fold per repeat (the guarantee the whole split exists for)."""
    spread = folds.groupby(["repeat", "subject_id"])["fold"].nunique()
    leaking = spread[spread > 1]
    if not leaking.empty:
        raise AssertionError(f"subjects in more than one fold: {list(leaking.index)[:5]}")


def fold_counts(folds: pd.DataFrame) -> list[dict]:
    """Per repeat and fold: videos and subjects of each label (written to report.json)."""
    rows = []
    for (repeat, fold), part in folds.groupby(["repeat", "fold"], sort=True):
        row = {"repeat": int(repeat), "fold": int(fold)}
        for label in FOLD_LABELS:
            of_label = part[part["label"] == label]
            row[f"{label}_videos"] = len(of_label)
            row[f"{label}_subjects"] = int(of_label["subject_id"].nunique())
        rows.append(row)
    return rows
