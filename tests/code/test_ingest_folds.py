"""Subject-grouped, label-stratified folds: no subject in two folds, balanced labels, seedable."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypomimia.data.folds import check_feasible, fold_counts, make_folds
from hypomimia.errors import UserError


def _videos(n_pd: int, n_control: int, per_subject: int = 3, n_unknown: int = 0) -> pd.DataFrame:
    rows = []
    for label, n in (("pd", n_pd), ("control", n_control), ("unknown", n_unknown)):
        for s in range(n):
            for v in range(per_subject):
                rows.append({"video_id": f"{label}{s}_{v}", "subject_id": f"{label}{s}", "label": label})
    return pd.DataFrame(rows)


@settings(max_examples=30, deadline=None)
@given(
    n_pd=st.integers(4, 12),
    n_control=st.integers(4, 12),
    per_subject=st.integers(1, 4),
    k=st.integers(2, 4),
    repeats=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_no_subject_spans_folds_and_every_fold_has_both_labels(
    n_pd, n_control, per_subject, k, repeats, seed
):
    folds = make_folds(_videos(n_pd, n_control, per_subject), k, repeats, seed)
    assert (folds.groupby(["repeat", "subject_id"])["fold"].nunique() == 1).all()
    assert len(folds) == (n_pd + n_control) * per_subject * repeats
    for _, part in folds.groupby(["repeat", "fold"]):
        assert set(part["label"]) == {"pd", "control"}
    # Stratified over subjects: per fold, each label's subject count is within one of an even split.
    for row in fold_counts(folds):
        assert abs(row["pd_subjects"] - n_pd / k) < 1
        assert abs(row["control_subjects"] - n_control / k) < 1


def test_seeded_and_independent_of_row_order():
    videos = _videos(6, 6)
    a = make_folds(videos, 3, 2, seed=7)
    b = make_folds(videos.sample(frac=1, random_state=1), 3, 2, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = make_folds(videos, 3, 2, seed=8)
    assert not a["fold"].equals(c["fold"])
    # Repeats are different shuffles of the same subjects.
    assert (
        not a[a["repeat"] == 0]["fold"]
        .reset_index(drop=True)
        .equals(a[a["repeat"] == 1]["fold"].reset_index(drop=True))
    )


def test_unknown_labels_get_no_fold():
    folds = make_folds(_videos(4, 4, n_unknown=3), 2, 1, 0)
    assert set(folds["label"]) == {"pd", "control"}


def test_nothing_labelled_gives_empty_folds():
    folds = make_folds(_videos(0, 0, n_unknown=3), 4, 1, 0)
    assert folds.empty and list(folds.columns) == ["video_id", "subject_id", "label", "repeat", "fold"]


def test_too_few_subjects_names_the_largest_possible_k():
    with pytest.raises(UserError) as err:
        check_feasible(_videos(3, 5), k=4)
    assert "3 pd, 5 control" in err.value.problem
    assert "lower ingest.folds to <= 3" in err.value.fix


def test_one_class_missing_asks_for_subjects():
    with pytest.raises(UserError) as err:
        make_folds(_videos(5, 0), 2, 1, 0)
    assert "add subjects of both labels" in err.value.fix


def test_split_groups_keep_matched_pairs_in_one_fold():
    """Twins / matched pairs (split_group) must never straddle folds, or the model memorises the partner."""
    rows = []
    for pair in range(8):
        for label in ("pd", "control"):
            sid = f"s{pair}{label}"
            rows += [
                {"video_id": f"{sid}_v{v}", "subject_id": sid, "label": label, "split_group": f"pair{pair}"}
                for v in range(2)
            ]
    videos = pd.DataFrame(rows)
    folds = make_folds(videos, k=4, repeats=3, seed=0)
    group_of = dict(zip(videos["subject_id"], videos["split_group"], strict=False))
    spread = folds.assign(g=folds["subject_id"].map(group_of)).groupby(["repeat", "g"])["fold"].nunique()
    assert (spread == 1).all()
    for (_, _), fold in folds.groupby(["repeat", "fold"]):
        assert set(fold["label"]) == {"pd", "control"}


def test_empty_split_group_falls_back_to_the_subject():
    videos = pd.DataFrame(
        [
            {
                "video_id": f"v{i}",
                "subject_id": f"s{i}",
                "label": "pd" if i % 2 else "control",
                "split_group": "",
            }
            for i in range(8)
        ]  # fmt: skip
    )
    plain = make_folds(videos.drop(columns="split_group"), k=2, repeats=1, seed=3)
    assert make_folds(videos, k=2, repeats=1, seed=3).equals(plain)
