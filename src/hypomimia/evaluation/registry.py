"""The MLflow model registry as the endpoint sees it: aliases ``champion``, ``challenger``, ``previous``.

* evaluate sets ``challenger`` on the version it evaluated (and records a rejection when not blessed);
* :func:`promote` (after a blessing): the old champion becomes ``previous``, the challenger becomes
  ``champion``, ``challenger`` is removed; the version gets the evaluation's numbers as tags;
* :func:`rollback`: ``previous`` becomes ``champion`` again; the demoted version is tagged.
Serving loads ``models:/<name>@champion``. Every change is written to the audit log
(hypomimia.lineage.audit) with the decision file as evidence.

Promotion and rollback read the aliases, set them and append their audit record under the audit
log's change lock (:func:`hypomimia.lineage.audit.exclusive`): two promotions racing run one after
the other, so the aliases always match the log's last record and the chain stays intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hypomimia.errors import UserError
from hypomimia.lineage import audit

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
TAG_AUROC, TAG_FOLDS, TAG_ROLLED_BACK = (
    "hypomimia.eval.subject_auroc",
    "hypomimia.eval.folds_digest",
    "hypomimia.rolled_back",
)


def client(tracking_uri: str):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def alias_version(c, name: str, alias: str) -> str | None:
    """The version an alias points at, or None (no such alias or model)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def version_of_run(c, name: str, run_id: str | None) -> str | None:
    """The registered version logged by a training run (newest if several)."""
    if not run_id:
        return None
    from mlflow.exceptions import MlflowException

    try:
        found = c.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException:
        return None
    return str(max(int(v.version) for v in found)) if found else None


@dataclass
class ChampionRecord:
    version: str
    subject_auroc: float | None
    folds_digest: str | None


def champion(c, name: str) -> ChampionRecord | None:
    v = alias_version(c, name, CHAMPION)
    if v is None:
        return None
    tags = c.get_model_version(name, v).tags
    auroc = tags.get(TAG_AUROC)
    return ChampionRecord(v, float(auroc) if auroc not in (None, "") else None, tags.get(TAG_FOLDS))


def set_challenger(c, name: str, version: str) -> None:
    c.set_registered_model_alias(name, CHALLENGER, version)


def _require_version(c, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        c.get_model_version(name, version)
    except MlflowException:
        raise UserError(
            f"registered model {name!r} has no version {version}",
            "'hypomimia registry show' lists the versions and their aliases",
        ) from None


def promote(c, name: str, version: str, *, why: str, evidence: str | None, tags: dict | None = None) -> dict:
    """``version`` becomes champion, the old champion ``previous``; returns what changed."""
    _require_version(c, name, version)
    with audit.exclusive():  # read, set and record as one: a racing promotion waits
        return _promote(c, name, version, why=why, evidence=evidence, tags=tags)


def _promote(c, name: str, version: str, *, why: str, evidence: str | None, tags: dict | None) -> dict:
    old = alias_version(c, name, CHAMPION)
    if old == version:
        return {
            "model": name,
            "champion": version,
            "previous": alias_version(c, name, PREVIOUS),
            "changed": False,
        }
    for k, v in (tags or {}).items():
        c.set_model_version_tag(name, version, k, str(v))
    if old is not None:
        c.set_registered_model_alias(name, PREVIOUS, old)
    c.set_registered_model_alias(name, CHAMPION, version)
    if alias_version(c, name, CHALLENGER) == version:
        c.delete_registered_model_alias(name, CHALLENGER)
    what = {"model": name, "version": version, "alias": CHAMPION, "previous": old}
    audit.record("promote", what, why, evidence)
    return {"model": name, "champion": version, "previous": old, "changed": True}


def reject(name: str, version: str | None, *, why: str, evidence: str | None) -> dict:
    return audit.record("reject", {"model": name, "version": version, "alias": CHALLENGER}, why, evidence)


def rollback(c, name: str, *, why: str) -> dict:
    """``previous`` becomes champion again; the demoted champion is tagged and loses the alias."""
    with audit.exclusive():
        return _rollback(c, name, why=why)


def _rollback(c, name: str, *, why: str) -> dict:
    prev = alias_version(c, name, PREVIOUS)
    if prev is None:
        raise UserError(
            f"registered model {name!r} has no '{PREVIOUS}' alias: there is nothing to roll back to",
            "promote a version by hand: hypomimia registry promote --version N",
        )
    current = alias_version(c, name, CHAMPION)
    c.set_registered_model_alias(name, CHAMPION, prev)
    c.delete_registered_model_alias(name, PREVIOUS)
    if current is not None:
        c.set_model_version_tag(name, current, TAG_ROLLED_BACK, "true")
    audit.record(
        "rollback", {"model": name, "version": prev, "alias": CHAMPION, "demoted": current}, why, None
    )
    return {"model": name, "champion": prev, "demoted": current}


def show(c, name: str) -> dict:
    """Versions (newest first) with their aliases and evaluation tags."""
    from mlflow.exceptions import MlflowException

    try:
        versions = c.search_model_versions(f"name='{name}'")
    except MlflowException:
        versions = []
    if not versions:
        raise UserError(
            f"no registered model {name!r} in this MLflow store", "train with train.registered_model set"
        )
    aliases = {}
    try:
        for alias, v in c.get_registered_model(name).aliases.items():
            aliases.setdefault(str(v), []).append(alias)
    except MlflowException:
        pass
    rows = []
    for v in sorted(versions, key=lambda v: -int(v.version)):
        rows.append({"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
                     "run_id": v.run_id, "subject_auroc": v.tags.get(TAG_AUROC),
                     "folds_digest": v.tags.get(TAG_FOLDS), "rolled_back": v.tags.get(TAG_ROLLED_BACK) == "true"})  # fmt: skip
    return {"model": name, "versions": rows}


def promote_decision(c, decision_path: Path) -> dict:
    """Promote what a blessing.json blessed; a decision that did not bless changes nothing."""
    try:
        d = json.loads(Path(decision_path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot read the blessing decision {decision_path} ({e})", "run 'hypomimia evaluate' first"
        ) from None
    name, version = d.get("model"), (d.get("challenger") or {}).get("version")
    if not d.get("blessed"):
        return {"model": name, "changed": False, "reason": d.get("reason")}
    if not name or not version:
        raise UserError(
            f"{decision_path} blessed a model that is not registered (model {name!r}, version {version!r})",
            "train with train.registered_model and MLflow tracking on, then evaluate again",
        )
    tags = {TAG_AUROC: d["challenger"]["subject_auroc"], TAG_FOLDS: d["challenger"]["folds_digest"]}
    return promote(
        c, name, str(version), why=d.get("reason", "blessed"), evidence=str(decision_path), tags=tags
    )
