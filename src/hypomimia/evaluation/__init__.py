"""Evaluation: the study's comparisons on the same subject-grouped folds and the gate to the registry.

``landmarks`` (static and dynamic features from the tubes' landmarks, scikit-learn baselines),
``plan`` (which model or temporal setting is trained on which fold), ``stats`` (DeLong, paired
subject bootstrap, Holm), ``report`` (pooled metrics, slices, figures, evaluation.md),
``blessing`` (the decision) and ``registry`` (MLflow aliases champion / challenger / previous).
"""
