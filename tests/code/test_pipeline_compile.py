"""The compiled KFP package: up to date with the code, deterministic, GPU request and typed artifacts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hypomimia.config import load_params
from hypomimia.pipeline_runner import apply_overrides, compile_pipeline

PACKAGE = Path("pipeline/hypomimia_pipeline.yaml")


@pytest.fixture(scope="module")
def params(repo_root):
    return load_params(repo_root / "params.yaml")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, params, repo_root) -> Path:
    return compile_pipeline(params, tmp_path_factory.mktemp("kfp") / "pipeline.yaml", repo=repo_root)


@pytest.fixture(scope="module")
def spec(compiled):
    pipeline_spec, platform_spec = yaml.safe_load_all(compiled.read_text())
    return pipeline_spec, platform_spec


def test_checked_in_package_is_up_to_date(compiled, repo_root):
    checked_in = repo_root / PACKAGE
    assert checked_in.read_bytes() == compiled.read_bytes(), (
        "pipeline/hypomimia_pipeline.yaml is out of date: run 'hypomimia pipeline compile'"
    )


def test_compile_is_deterministic_across_processes(compiled, tmp_path, repo_root):
    """Same code + params -> the same bytes, even in another process with another hash seed."""
    again = tmp_path / "again.yaml"
    code = (
        "import sys; from pathlib import Path; from hypomimia.config import load_params; "
        "from hypomimia.pipeline_runner import compile_pipeline; "
        "compile_pipeline(load_params('params.yaml'), Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(again)], cwd=repo_root, env=env, check=True, timeout=120)
    assert again.read_bytes() == compiled.read_bytes()


def test_train_requests_a_gpu_from_params(spec, params):
    pipeline_spec, platform_spec = spec
    train = pipeline_spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == params.pipeline.accelerator_type
    assert train["resources"]["accelerator"]["resourceCount"] == str(params.pipeline.accelerator_limit)
    assert train["resources"]["resourceCpuRequest"] == params.pipeline.train_cpu_request
    assert train["resources"]["resourceMemoryRequest"] == params.pipeline.train_memory_request
    assert train["image"] == params.pipeline.gpu_image
    tolerations = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"][
        "tolerations"
    ]
    assert tolerations == [
        {"effect": "NoSchedule", "key": params.pipeline.accelerator_type, "operator": "Exists"}
    ]


def test_every_other_stage_uses_the_cpu_image_without_gpu(spec, params):
    executors = spec[0]["deploymentSpec"]["executors"]
    # train and the evaluation's fits (networks trained per setting and fold) run on the GPU image
    others = {
        name: ex["container"]
        for name, ex in executors.items()
        if name not in ("exec-train", "exec-evaluate-fit")
    }
    assert others, "no stage executors compiled"
    for name, container in others.items():
        assert container["image"] == params.pipeline.image, name
        assert "accelerator" not in container.get("resources", {}), name
        assert container["resources"]["resourceCpuRequest"] == params.pipeline.stage_cpu_request, name


def test_cpu_only_variant_requests_no_gpu(params, tmp_path, repo_root):
    cpu = apply_overrides(params, ["pipeline.gpu=false"])
    pipeline_spec, *platform = yaml.safe_load_all(
        compile_pipeline(cpu, tmp_path / "cpu.yaml", repo=repo_root).read_text()
    )
    assert (
        "accelerator"
        not in pipeline_spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    )
    assert platform == [] or "tolerations" not in str(platform)


def _artifacts(component: dict, side: str) -> dict[str, str]:
    defs = component.get(side, {}).get("artifacts", {})
    return {name: d["artifactType"]["schemaTitle"] for name, d in defs.items()}


def test_components_have_typed_artifacts(spec):
    comps = spec[0]["components"]
    assert _artifacts(comps["comp-phantom"], "outputDefinitions") == {
        "videos": "system.Dataset",
        "metrics": "system.Metrics",
    }
    assert _artifacts(comps["comp-ingest"], "inputDefinitions") == {"videos": "system.Dataset"}
    assert _artifacts(comps["comp-ingest"], "outputDefinitions") == {
        "ingested": "system.Dataset", "metrics": "system.Metrics", "report": "system.Markdown",
    }  # fmt: skip
    assert comps["comp-facetubes"]["inputDefinitions"]["artifacts"]["shards"]["isArtifactList"] is True
    assert comps["comp-voice"]["inputDefinitions"]["artifacts"]["shards"]["isArtifactList"] is True
    assert _artifacts(comps["comp-voice"], "outputDefinitions") == {
        "features": "system.Dataset", "metrics": "system.Metrics",
    }  # fmt: skip
    assert _artifacts(comps["comp-validate"], "inputDefinitions") == {
        "ingested": "system.Dataset", "tubes": "system.Dataset", "voice": "system.Dataset",
    }  # fmt: skip
    assert _artifacts(comps["comp-validate"], "outputDefinitions") == {
        "validation": "system.Dataset", "metrics": "system.Metrics", "report": "system.Markdown",
    }  # fmt: skip
    assert comps["comp-validate"]["outputDefinitions"]["parameters"]["success"]["parameterType"] == "BOOLEAN"
    assert _artifacts(comps["comp-train"], "outputDefinitions") == {
        "model": "system.Model", "metrics": "system.Metrics", "report": "system.Markdown",
    }  # fmt: skip
    assert comps["comp-train"]["inputDefinitions"]["parameters"]["params"]["parameterType"] == "STRING"


def test_faces_fan_out_and_the_gate_guards_train(spec, params):
    dag = spec[0]["root"]["dag"]["tasks"]
    loop = next(t for name, t in dag.items() if name.startswith("for-loop"))
    assert loop["parameterIterator"]["items"]["raw"] == str(list(range(params.pipeline.shards)))
    assert loop["iteratorPolicy"]["parallelismLimit"] == params.pipeline.shards
    comps = spec[0]["components"]
    branches = next(
        c["dag"]["tasks"] for name, c in comps.items() if name.startswith("comp-condition-branches")
    )
    guarded = {
        t["triggerPolicy"]["condition"]: set(comps[t["componentRef"]["name"]]["dag"]["tasks"])
        for t in branches.values()
    }
    passed = "inputs.parameter_values['pipelinechannel--validate-success'] == true"
    assert set(guarded) == {passed, f"!({passed})"} and guarded[f"!({passed})"] == {"gate-failed"}
    stages = {t for t in guarded[passed] if not t.startswith(("condition", "for-loop"))}
    assert stages == {"train", "explain", "evaluate"}  # nothing after the gate runs when it fails


def test_voice_fans_out_beside_the_faces_and_feeds_the_gate(spec, params):
    """voice reads only ingest (so it runs in parallel with facetubes), over the same shards; the gate
    validates its table, the DAG returns it, and after the gate train and the evaluation's fits read it
    (the I3D recipe's voice stream, the voice model)."""
    dag = spec[0]["root"]["dag"]["tasks"]
    comps = spec[0]["components"]
    loops = {name: t for name, t in dag.items() if name.startswith("for-loop")}
    voice_loop = next(
        t for t in loops.values() if "voice-shard" in comps[t["componentRef"]["name"]]["dag"]["tasks"]
    )
    assert voice_loop["parameterIterator"]["items"]["raw"] == str(list(range(params.pipeline.shards)))
    assert voice_loop["iteratorPolicy"]["parallelismLimit"] == params.pipeline.shards
    assert voice_loop["dependentTasks"] == ["ingest"]
    assert dag["voice"]["dependentTasks"] == [next(n for n, t in loops.items() if t is voice_loop)]
    assert "voice" in dag["validate"]["dependentTasks"] and "facetubes" in dag["validate"]["dependentTasks"]
    inputs = spec[0]["root"]["inputDefinitions"]["parameters"]
    assert inputs["voice_params"]["defaultValue"] == params.voice.model_dump_json()
    assert inputs["voice_cache"]["defaultValue"] == ""
    outputs = spec[0]["root"]["outputDefinitions"]["artifacts"]
    assert set(outputs) == {"tubes", "validation", "voice"}
    for reader in ("comp-train", "comp-evaluate-fit"):
        assert _artifacts(comps[reader], "inputDefinitions")["voice"] == "system.Dataset"
    assert "pipelinechannel--voice-features" in str(spec[0]["components"])  # wired to the voice gather


def test_evaluation_fans_out_per_task_and_blessing_gates_promotion(spec, params):
    from pipeline.pipeline import evaluation_tasks

    comps = spec[0]["components"]
    loops = [
        c
        for name, c in comps.items()
        if name.startswith("comp-for-loop") and "evaluate-fit" in c["dag"]["tasks"]
    ]
    assert len(loops) == 1
    gated = [
        c for name, c in comps.items() if name.startswith("comp-condition") and "promote" in c["dag"]["tasks"]
    ]
    assert len(gated) == 1 and set(gated[0]["dag"]["tasks"]) == {"promote", "serve-build"}
    assert gated[0]["dag"]["tasks"]["serve-build"]["dependentTasks"] == ["promote"]
    text = str(spec[0])
    assert "pipelinechannel--evaluate-blessed" in text
    tasks = evaluation_tasks(params)
    assert len(tasks) == len(set(tasks)) >= len(params.evaluate.models) * len(params.evaluate.folds or [0])


def test_params_sections_are_pipeline_parameters(spec, params):
    inputs = spec[0]["root"]["inputDefinitions"]["parameters"]
    assert inputs["train_params"]["defaultValue"] == params.train.model_dump_json()
    assert inputs["validate_params"]["defaultValue"] == params.validate_.model_dump_json()
    assert inputs["mlflow_tracking_uri"]["defaultValue"] == params.pipeline.mlflow_tracking_uri


def test_data_uri_imports_real_videos_instead_of_the_phantom(params, tmp_path, repo_root):
    real = apply_overrides(params, ["pipeline.data_uri=s3://clinic-bucket/study-7"])
    pipeline_spec, *_ = yaml.safe_load_all(
        compile_pipeline(real, tmp_path / "real.yaml", repo=repo_root).read_text()
    )
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    assert "phantom" not in tasks and "importer" in tasks
    importer = pipeline_spec["deploymentSpec"]["executors"]["exec-importer"]["importer"]
    assert importer["artifactUri"]["constant"] == "s3://clinic-bucket/study-7"
    assert (
        tasks["importer"]["inputs"]["parameters"]["uri"]["runtimeValue"]["constant"]
        == "s3://clinic-bucket/study-7"
    )
