"""dvc.yaml mirrors the KFP DAG: same stages, same wiring, same CLI calls, every param key of each section."""

import re

import pytest
import yaml
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.config import Params, load_params
from hypomimia.pipeline_runner import compile_pipeline

# KFP tasks that are not stages of their own: the fan-out halves of facetubes, voice and evaluate.
FOLDED_INTO = {"facetubes-shard": "facetubes", "voice-shard": "voice", "evaluate-fit": "evaluate"}
# promote changes registry aliases and serve-build packs the registry's champion into a bento (side
# effects, not outputs DVC could cache): the DAG only.
CONTROL_FLOW = {"gate-failed", "importer", "promote", "serve-build"}
SECTION_ATTR = {"validate": "validate_"}
# The DAG's data-source task; in DVC the data set is the DVC-tracked folder of data.dvc, not a stage.
DATA_SOURCE = "phantom"
STAGES = ["ingest", "facetubes", "voice", "validate", "train", "explain", "evaluate"]


@pytest.fixture(scope="module")
def dvc(repo_root) -> dict:
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def dag(tmp_path_factory, repo_root) -> dict:
    path = compile_pipeline(load_params(repo_root / "params.yaml"), tmp_path_factory.mktemp("kfp") / "p.yaml")
    return next(yaml.safe_load_all(path.read_text()))


def _stage(task: str) -> str | None:
    task = FOLDED_INTO.get(task, task)
    return None if task in CONTROL_FLOW else task


def kfp_edges(spec: dict) -> set[tuple[str, str]]:
    """(consumer stage, producer stage) for every artifact a stage task reads, through loops and conditions."""
    edges = set()
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        for name, task in dag["tasks"].items():
            if name.startswith(("for-loop", "condition")):
                continue
            for art in task.get("inputs", {}).get("artifacts", {}).values():
                if "taskOutputArtifact" in art:  # a loop's collected output names the loop body's task
                    producer = art["taskOutputArtifact"]["producerTask"]
                    if producer.startswith("for-loop"):
                        producer = re.fullmatch(
                            r"pipelinechannel--(.+)-[a-z_]+", art["taskOutputArtifact"]["outputArtifactKey"]
                        )[1]
                else:  # inside a sub-DAG: 'pipelinechannel--<producer task>-<output>'
                    producer = re.fullmatch(r"pipelinechannel--(.+)-[a-z_]+", art["componentInputArtifact"])[
                        1
                    ]
                consumer, producer = _stage(name), _stage(producer)
                if consumer and producer and consumer != producer:
                    edges.add((consumer, producer))
    return edges


def kfp_stages(spec: dict) -> set[str]:
    names = {t for d in [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
             for t in d["tasks"]}  # fmt: skip
    return {s for t in names if not t.startswith(("for-loop", "condition")) and (s := _stage(t))}


def dvc_edges(stages: dict, tracked: list[str]) -> set[tuple[str, str]]:
    produced_by = {out: name for name, s in stages.items() for out in s["outs"]}

    def producer(dep: str) -> str | None:
        if any(dep == t or dep.startswith(t + "/") for t in tracked):
            return DATA_SOURCE
        return produced_by.get(dep)

    return {(name, p) for name, s in stages.items() for d in s["deps"] if (p := producer(d))}


@pytest.fixture(scope="module")
def tracked(repo_root) -> list[str]:
    """Paths the data.dvc file puts under DVC."""
    return [o["path"] for o in yaml.safe_load((repo_root / "data.dvc").read_text())["outs"]]


def test_dvc_stages_are_the_dag_stages(dvc, dag):
    assert set(dvc) == kfp_stages(dag) - {DATA_SOURCE} == set(STAGES)


def test_data_dvc_tracks_what_ingest_reads(dvc, tracked):
    phantom_out = "data/phantom"
    assert any(phantom_out == t or phantom_out.startswith(t + "/") for t in tracked)
    assert phantom_out in dvc["ingest"]["deps"] and phantom_out in dvc["ingest"]["cmd"]


def test_dvc_wiring_is_the_dag_wiring(dvc, dag, tracked):
    assert dvc_edges(dvc, tracked) == kfp_edges(dag)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_tracks_its_code_and_every_param_key(stage, dvc, repo_root):
    spec = dvc[stage]
    section = Params.model_fields[SECTION_ATTR.get(stage, stage)].annotation
    assert spec["params"] == [f"{stage}.{key}" for key in section.model_fields], "regenerate the params list"
    assert (
        f"src/hypomimia/stages/{stage}.py" in spec["deps"]
        and f"src/hypomimia/config/{stage}.py" in spec["deps"]
    )
    missing = [
        d for d in spec["deps"] if not d.startswith(("data/", "work/")) and not (repo_root / d).exists()
    ]
    assert missing == []


@pytest.mark.parametrize("stage", STAGES)
def test_stage_runs_the_stage_cli(stage, dvc):
    cmd = dvc[stage]["cmd"].split()
    assert cmd[:2] == ["hypomimia", stage] and "--params" in cmd
    assert CliRunner().invoke(_app, [stage, "--help"]).exit_code == 0, f"no 'hypomimia {stage}' command"


def test_params_yaml_has_every_tracked_key(dvc, repo_root):
    """dvc repro stops on a params key missing from params.yaml, even when the code has a default."""
    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    missing = []
    for spec in dvc.values():
        for key in spec["params"]:
            section, name = key.split(".", 1)
            if name not in (data.get(section) or {}):
                missing.append(key)
    assert missing == [], "add these keys to params.yaml ('hypomimia config show' prints the defaults)"
