"""What cross-validated AUROC does the landmark baseline reach when its features carry NO label?

The static landmark baseline scored below chance on the natural phantom (0.30, docs/evaluation.md).
This simulation asks whether that needs a cause in the data: 32 subjects in matched pairs, 4 folds
grouped by pair, 6 videos per subject, 956 features (478 landmarks x 2) that are a subject's random
face (low rank, like face geometry) plus per-video noise, and evaluate's own classifier
(standardised L2 logistic regression, `hypomimia.evaluation.landmarks.make_classifier`), scored like
`evaluate` (mean margin per subject, held-out folds pooled). With p >> n a held-out subject's own
features are missing from its class in training, which biases cross-validated AUROC below 0.5
(Parker et al. 2007, "Stratification bias in low signal microarray studies"); the subject-bootstrap
CI of one run does not include that training variability.

    python scripts/null_landmark_auroc.py [REPEATS]      # default 200 (~4 min on 2 idle cores)
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from hypomimia.evaluation.landmarks import make_classifier

SUBJECTS, VIDEOS, FEATURES, FOLDS, RANK = 32, 6, 956, 4, 10


def one_study(rng: np.random.Generator) -> float:
    faces = rng.normal(size=(SUBJECTS, RANK)) @ rng.normal(size=(RANK, FEATURES))
    labels = np.tile([1, 0], SUBJECTS // 2)  # pair i = subjects 2i (PD) and 2i+1 (control)
    pair_fold = rng.permutation(np.repeat(np.arange(FOLDS), SUBJECTS // 2 // FOLDS))
    fold = pair_fold[np.arange(SUBJECTS) // 2]
    x = np.repeat(faces, VIDEOS, 0) + 0.3 * rng.normal(size=(SUBJECTS * VIDEOS, FEATURES))
    y, f, subject = np.repeat(labels, VIDEOS), np.repeat(fold, VIDEOS), np.repeat(np.arange(SUBJECTS), VIDEOS)
    score = np.zeros(SUBJECTS)
    for k in range(FOLDS):
        model = make_classifier("logistic", 1.0, 0).fit(x[f != k], y[f != k])
        p = np.clip(model.predict_proba(x[f == k])[:, 1], 1e-6, 1 - 1e-6)
        per_subject = pd.Series(np.log(p / (1 - p))).groupby(subject[f == k]).mean()
        score[per_subject.index] = per_subject.to_numpy()
    return float(roc_auc_score(labels, score))


def main(repeats: int = 200) -> None:
    rng = np.random.default_rng(0)
    auc = np.array([one_study(rng) for _ in range(repeats)])
    print(f"{repeats} no-signal studies: pooled subject AUROC mean {auc.mean():.3f} (sd {auc.std():.3f}); "
          f"below 0.5 in {np.mean(auc < 0.5):.0%}, <= 0.30 in {np.mean(auc <= 0.30):.0%}")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
