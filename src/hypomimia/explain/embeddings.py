"""Does the descriptor space separate PD from controls, and does it follow severity?

Video embeddings (the model's pooled descriptor, averaged over evenly spaced clips) are
averaged again per subject. Reported: silhouette score of the labels (cosine, on standardised
embeddings), and the Spearman correlation of a 1-D projection with UPDRS 3.2: PC1 (unsupervised,
sign chosen so PD is on the positive side) and LDA scored out of fold (subject-grouped, so a
subject's own label never places it).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


def _one_thread(fn):
    """Embedding tables are small (videos x a few hundred dims): BLAS/OpenMP threads only fight each
    other there, which made one LDA fit 40x slower on a busy 2-core machine."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapper


def standardize(x: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(np.asarray(x, dtype=np.float64))


def silhouette(x: np.ndarray, labels: np.ndarray) -> float | None:
    """Silhouette of the label grouping (cosine distance, standardised features); None when undefined."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return None
    return float(silhouette_score(standardize(x), labels, metric="cosine"))


@_one_thread
def pca_2d(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """2-D PCA coordinates and the explained variance ratios."""
    z = standardize(x)
    k = min(2, z.shape[0], z.shape[1])
    pca = PCA(n_components=k, random_state=seed).fit(z)
    coords = pca.transform(z)
    if k < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - k)))
    return coords, pca.explained_variance_ratio_.round(6).tolist()


@_one_thread
def tsne_2d(x: np.ndarray, perplexity: float, seed: int = 0) -> np.ndarray | None:
    """2-D t-SNE; perplexity is clipped to (n - 1) / 3 so small sets work. None below 4 points."""
    n = len(x)
    if n < 4:
        return None
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=1000)
    return tsne.fit_transform(standardize(x))


def pc1_projection(x: np.ndarray, is_pd: np.ndarray) -> np.ndarray:
    """First principal component, signed so that the PD mean is above the control mean (labels only fix the sign)."""
    z = standardize(x)
    p = PCA(n_components=1).fit_transform(z)[:, 0]
    is_pd = np.asarray(is_pd, bool)
    if is_pd.any() and (~is_pd).any() and p[is_pd].mean() < p[~is_pd].mean():
        p = -p
    return p


@_one_thread
def lda_projection_oof(
    x: np.ndarray, is_pd: np.ndarray, groups: np.ndarray, seed: int = 0
) -> np.ndarray | None:
    """Out-of-fold LDA scores (PD positive): each subject is placed by a discriminant fit without it.

    None when there are too few subjects per class for at least 2 folds.
    """
    is_pd = np.asarray(is_pd, int)
    groups = np.asarray(groups)
    per_class = [len(np.unique(groups[is_pd == c])) for c in (0, 1)]
    n_splits = min(5, *per_class)
    if n_splits < 2:
        return None
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = np.zeros(len(is_pd))
    for train, test in folds.split(x, is_pd, groups):
        scaler = StandardScaler().fit(x[train])
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(
            scaler.transform(x[train]), is_pd[train]
        )
        scores[test] = lda.decision_function(scaler.transform(x[test]))
    return scores


def spearman(projection: np.ndarray | None, score: np.ndarray) -> dict:
    """Spearman rho and p-value of a projection with a clinical score (rows without a score are skipped)."""
    out = {"rho": None, "p_value": None, "n": 0}
    if projection is None:
        return out
    score = np.asarray(score, dtype=float)
    keep = np.isfinite(score)
    out["n"] = int(keep.sum())
    if keep.sum() < 3 or np.ptp(score[keep]) == 0 or np.ptp(projection[keep]) == 0:
        return out
    res = stats.spearmanr(projection[keep], score[keep])
    out["rho"], out["p_value"] = float(res.statistic), float(res.pvalue)
    return out


@_one_thread
def embedding_summary(
    x: np.ndarray, is_pd: np.ndarray, updrs: np.ndarray, groups: np.ndarray, seed: int = 0
) -> dict:
    """Silhouette and Spearman(UPDRS 3.2) of PC1 and out-of-fold LDA for one set of embeddings."""
    x = np.asarray(x, dtype=np.float64)
    return {
        "n": len(x),
        "silhouette_label": silhouette(x, np.asarray(is_pd, int)),
        "spearman_updrs_pc1": spearman(pc1_projection(x, is_pd), updrs),
        "spearman_updrs_lda_oof": spearman(lda_projection_oof(x, is_pd, groups, seed), updrs),
    }
