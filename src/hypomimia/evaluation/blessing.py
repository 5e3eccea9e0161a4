"""The blessing decision (TFX Evaluator's idea, done with MLflow): may this challenger serve?

The challenger is judged as its *recipe*: the seed ensemble of ``evaluate.seeds`` trainings (per
subject, the mean of the seeds' probabilities), so the decision does not hinge on one training seed.
Three checks, thresholds from params.yaml ``evaluate.blessing``:
  1. floor: the seed ensemble's pooled subject AUROC 95% CI lower bound >= ``min_auroc_lower_ci``;
  2. no regression: ``champion AUROC - challenger AUROC <= max_drop_vs_champion``, both measured on
     the same fold assignment (equal folds digests). With no champion the check passes (the first
     blessed model becomes champion); with a champion measured on other folds it fails, because the
     two numbers are not a paired comparison;
  3. seed agreement: the fraction of seeds whose own pooled CI lower bound passes the floor (each
     seed's own decision) >= ``min_seed_agreement`` (0: reported, not required).
The decision, its thresholds and its evidence are one JSON artifact (blessing.json).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from hypomimia.config.evaluate import BlessingConfig


@dataclass
class Candidate:
    setting: str
    subject_auroc: float
    auroc_ci95: tuple[float, float]
    folds_digest: str
    version: str | None = None  # registered version of the trained model, when there is one
    # one {"seed", "auroc", "auroc_ci95"} per training seed; subject_auroc/auroc_ci95 are the ensemble's
    seeds: list[dict] = field(default_factory=list)


@dataclass
class Champion:
    version: str
    subject_auroc: float | None
    folds_digest: str | None


@dataclass
class Decision:
    blessed: bool
    reason: str
    checks: list[dict]
    thresholds: dict
    challenger: dict
    champion: dict | None
    model: str | None = None
    evidence: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _passes(lo: float | None, cfg: BlessingConfig) -> bool:
    return bool(lo is not None and not math.isnan(lo) and lo >= cfg.min_auroc_lower_ci)


def decide(
    cfg: BlessingConfig, challenger: Candidate, champion: Champion | None, model: str | None = None
) -> Decision:
    checks = []
    lo = challenger.auroc_ci95[0]
    floor_ok = _passes(lo, cfg)
    of = f" of the seed ensemble ({len(challenger.seeds)} seeds)" if challenger.seeds else ""
    checks.append(
        {
            "name": "auroc_lower_ci_floor",
            "passed": bool(floor_ok),
            "observed": lo,
            "required": f">= {cfg.min_auroc_lower_ci}",
            "detail": "pooled subject AUROC 95% CI lower bound"
            + of
            + ("" if lo == lo else " is undefined (bootstrap off or one class)"),
        }
    )
    if champion is None:
        checks.append({"name": "not_worse_than_champion", "passed": True, "observed": None,
                       "required": f"drop <= {cfg.max_drop_vs_champion}", "detail": "no champion yet: the first blessed model becomes champion"})  # fmt: skip
    elif champion.folds_digest != challenger.folds_digest or champion.subject_auroc is None:
        checks.append({"name": "not_worse_than_champion", "passed": False, "observed": None,
                       "required": f"drop <= {cfg.max_drop_vs_champion}",
                       "detail": f"champion v{champion.version} was evaluated on other folds "
                       f"({champion.folds_digest} vs {challenger.folds_digest}): not a paired comparison; "
                       "evaluate the champion's params on these folds, or promote by hand after review"})  # fmt: skip
    else:
        drop = champion.subject_auroc - challenger.subject_auroc
        checks.append({"name": "not_worse_than_champion", "passed": bool(drop <= cfg.max_drop_vs_champion + 1e-12),
                       "observed": drop, "required": f"drop <= {cfg.max_drop_vs_champion}",
                       "detail": f"champion v{champion.version} AUROC {champion.subject_auroc:.3f} vs "
                       f"challenger {challenger.subject_auroc:.3f} on the same folds"})  # fmt: skip
    per_seed = [{**r, "passes_floor": _passes(r["auroc_ci95"][0], cfg)} for r in challenger.seeds]
    challenger = replace(challenger, seeds=per_seed)
    n_pass = sum(r["passes_floor"] for r in per_seed)
    agreement = n_pass / len(per_seed) if per_seed else math.nan
    checks.append(
        {
            "name": "seed_agreement",
            "passed": bool(cfg.min_seed_agreement == 0 or agreement >= cfg.min_seed_agreement - 1e-12),
            "observed": agreement,
            "required": f">= {cfg.min_seed_agreement}",
            "detail": (
                f"{n_pass} of {len(per_seed)} training seeds pass the floor on their own ("
                + ", ".join(
                    f"seed {r['seed']} {'passes' if r['passes_floor'] else 'fails'}" for r in per_seed
                )
                + "); the gate decides on their ensemble"
            )
            if per_seed
            else "no training seeds (a deterministic reference)",
        }
    )
    blessed = all(c["passed"] for c in checks)
    failed = [c for c in checks if not c["passed"]]
    reason = (
        "blessed: " + "; ".join(c["detail"] for c in checks)
        if blessed
        else "not blessed: "
        + "; ".join(
            f"{c['name']} ({c['detail']}, observed {c['observed']}, required {c['required']})" for c in failed
        )
    )
    return Decision(
        blessed=blessed,
        reason=reason,
        checks=checks,
        thresholds=cfg.model_dump(),
        challenger=asdict(challenger),
        champion=asdict(champion) if champion else None,
        model=model,
        extra={
            "seed_agreement": agreement,
            "seeds_passing_floor": {str(r["seed"]): r["passes_floor"] for r in per_seed},
        },
    )
