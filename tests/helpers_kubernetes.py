"""Helpers of the TrainJob tests: a fake Kubernetes API with Kubeflow Trainer v2 (the SDK's TrainerClient
talks HTTP to it), and a strict check of a TrainJob manifest against the CRD's models.

The fake serves the handful of endpoints ``kubeflow.trainer.TrainerClient`` calls (the Trainer's version
ConfigMap, training runtimes, TrainJobs, their pods and logs), records every request, and plays each
TrainJob through ``script``: one status per GET of the job (the last one stays). When a job first reports
``Complete`` it calls ``on_complete(manifest)``: what the nodes would have done (write the model on the PVC).
"""

import json
import re
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Union, get_args, get_origin
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel

from tests.helpers_pipeline import LoopbackServer, calls  # noqa: F401 (calls: the same request records)

GROUP = "/apis/trainer.kubeflow.org/v1alpha1"
NOW = "2026-12-06T12:00:00Z"

# The ClusterTrainingRuntime Kubeflow Trainer installs with runtimes.defaultEnabled=true (its shape as
# `kubectl get clustertrainingruntimes torch-distributed -o yaml` prints it).
TORCH_DISTRIBUTED = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torch-distributed", "labels": {"trainer.kubeflow.org/framework": "torch"}},
    "spec": {
        "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
        "template": {
            "spec": {
                "replicatedJobs": [
                    {
                        "name": "node",
                        "replicas": 1,
                        "template": {
                            "metadata": {
                                "labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
                            },
                            "spec": {
                                "template": {
                                    "spec": {
                                        "containers": [
                                            {
                                                "name": "node",
                                                "image": "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime",
                                            }
                                        ]
                                    }
                                }
                            },
                        },
                    }
                ]
            }
        },
    },
}


class FakeKubernetes(LoopbackServer):
    def __init__(
        self, script=("Created", "Running", "Complete"), runtimes=None, on_complete=None, node_log=""
    ):
        self.script = list(script)
        self.runtimes = {
            r["metadata"]["name"]: r for r in (runtimes if runtimes is not None else [TORCH_DISTRIBUTED])
        }
        self.on_complete = on_complete
        self.node_log = node_log
        self.jobs, self.created, self.polls, self.deleted = {}, {}, {}, []
        super().__init__()

    def kubeconfig(self, path, namespace="pd-team", token="test-token"):
        """A kubeconfig whose current context is this fake (what KUBECONFIG points the launcher at)."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "tester", "namespace": namespace},
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    def state(self, name):
        """Where the job is in the script: one step per GET of the job so far (the first step before any)."""
        return self.script[min(max(self.polls.get(name, 0), 1), len(self.script)) - 1]

    def _job(self, name):
        """The stored TrainJob advanced by one step of the script (one GET = one step)."""
        self.polls[name] = self.polls.get(name, 0) + 1
        state = self.state(name)
        job = json.loads(json.dumps(self.jobs[name]))
        if state in ("Complete", "Failed"):
            if state == "Complete" and self.on_complete and name not in self.created:
                self.created[name] = True
                self.on_complete(self.jobs[name])
            reason = {"Complete": "JobSetCompleted", "Failed": "JobSetFailed"}[state]
            cond = {"type": state, "status": "True", "reason": reason, "message": f"jobset {state.lower()}",
                    "lastTransitionTime": NOW}  # fmt: skip
            job["status"] = {"conditions": [cond]}
        return job

    def _pods(self, name):
        job = self.jobs.get(name)
        if job is None:
            return []
        phase = {"Created": "Pending", "Running": "Running", "Complete": "Succeeded", "Failed": "Failed"}
        trainer = job["spec"].get("trainer", {})
        return [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-node-0-{i}-x{i}z",
                    "namespace": job["metadata"]["namespace"],
                    "creationTimestamp": NOW,
                    "labels": {
                        "jobset.sigs.k8s.io/jobset-name": name,
                        "jobset.sigs.k8s.io/replicatedjob-name": "node",
                        "batch.kubernetes.io/job-completion-index": str(i),
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "node",
                            "image": trainer.get("image", ""),
                            "resources": trainer.get("resourcesPerNode", {}),
                        }
                    ]
                },
                "status": {"phase": phase[self.state(name)]},
            }
            for i in range(trainer.get("numNodes", 1))
        ]

    def _handler(fake):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output quiet
                pass

            def _reply(self, obj, code=200):
                data = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(obj, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _missing(self, what):
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                }
                return self._reply({**status, "message": f"{what} not found"}, 404)

            def _handle(self, method):
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                fake.requests.append(
                    (method, u.path, q, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                p = u.path
                if (
                    method == "GET"
                    and p == "/api/v1/namespaces/kubeflow-system/configmaps/kubeflow-trainer-public"
                ):
                    return self._reply(
                        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"kubeflow_trainer_version": "v2.2.0"},
                         "metadata": {"name": "kubeflow-trainer-public", "namespace": "kubeflow-system"}}
                    )  # fmt: skip
                if method == "GET" and (
                    m := re.fullmatch(f"{GROUP}/namespaces/[^/]+/trainingruntimes/([^/]+)", p)
                ):
                    return self._missing(f'trainingruntimes "{m[1]}"')
                if method == "GET" and (m := re.fullmatch(f"{GROUP}/clustertrainingruntimes/([^/]+)", p)):
                    if m[1] in fake.runtimes:
                        return self._reply(fake.runtimes[m[1]])
                    return self._missing(f'clustertrainingruntimes "{m[1]}"')
                if method == "POST" and (m := re.fullmatch(f"{GROUP}/namespaces/([^/]+)/trainjobs", p)):
                    name = body["metadata"]["name"]
                    meta = {
                        **body["metadata"],
                        "namespace": m[1],
                        "uid": str(uuid.uuid4()),
                        "creationTimestamp": NOW,
                    }
                    fake.jobs[name] = {**body, "metadata": meta}
                    return self._reply(fake.jobs[name], 201)
                if m := re.fullmatch(f"{GROUP}/namespaces/([^/]+)/trainjobs/([^/]+)", p):
                    if m[2] not in fake.jobs:
                        return self._missing(f'trainjobs "{m[2]}"')
                    if method == "DELETE":
                        fake.deleted.append(fake.jobs.pop(m[2])["metadata"]["name"])
                        return self._reply({"kind": "Status", "apiVersion": "v1", "status": "Success"})
                    return self._reply(fake._job(m[2]))
                if method == "GET" and re.fullmatch("/api/v1/namespaces/[^/]+/pods", p):
                    name = re.search(r"jobset-name=([^,]+)", q.get("labelSelector", ""))
                    return self._reply(
                        {"apiVersion": "v1", "kind": "PodList", "items": fake._pods(name[1] if name else "")}
                    )
                if method == "GET" and re.fullmatch("/api/v1/namespaces/[^/]+/pods/[^/]+/log", p):
                    return self._reply(fake.node_log)
                return self._reply(
                    {"kind": "Status", "code": 404, "message": f"not faked: {method} {p}"}, 404
                )

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        return H


# ---------------------------------------------------------------- the TrainJob CRD, from its models


def check_against_models(model: type[BaseModel], data: dict, path: str = "") -> None:
    """Every key of ``data`` is a field of ``model`` (by its JSON name), every required field is there, and
    the same holds for every nested object: what the API server's structural schema would prune or reject.
    The kubeflow_trainer_api models are generated from the Trainer's OpenAPI spec, the CRD's schema."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    unknown = sorted(set(data) - set(fields))
    assert not unknown, f"{path or model.__name__}: unknown field(s) {unknown} (not in {model.__name__})"
    missing = sorted(alias for alias, f in fields.items() if f.is_required() and alias not in data)
    assert not missing, f"{path or model.__name__}: required field(s) {missing} missing"
    for alias, value in data.items():
        _check_value(fields[alias].annotation, value, f"{path}.{alias}" if path else alias)


def _check_value(tp, value, path: str) -> None:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union:
        options = [a for a in args if a is not type(None)]
        assert value is not None or len(options) < len(args), f"{path}: null"
        return _check_value(options[0], value, path) if len(options) == 1 else None
    if origin is list:
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            _check_value(args[0], item, f"{path}[{i}]")
    elif origin is dict:
        assert isinstance(value, dict), f"{path}: expected a mapping, got {value!r}"
        for key, item in value.items():
            _check_value(args[1], item, f"{path}.{key}")
    elif isinstance(tp, type) and issubclass(tp, BaseModel) and "actual_instance" not in tp.model_fields:
        assert isinstance(value, dict), f"{path}: expected an object ({tp.__name__}), got {value!r}"
        check_against_models(tp, value, path)
    # leaves (StrictStr, StrictInt, int-or-string quantities): typed by from_dict in check_trainjob


def check_trainjob(manifest: dict):
    """A TrainJob manifest as the API server would take it: trainer.kubeflow.org/v1alpha1, every field known
    to the CRD's models (recursively), the required ones present, strict types (the models' StrictStr/
    StrictInt) and a loss-free round trip through the model classes. Returns the parsed model."""
    from kubeflow_trainer_api import models

    assert manifest["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and manifest["kind"] == "TrainJob"
    name = manifest["metadata"]["name"]
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name), f"metadata.name {name!r} is not DNS-1035"
    check_against_models(models.TrainerV1alpha1TrainJob, manifest)
    parsed = models.TrainerV1alpha1TrainJob.from_dict(manifest)  # raises on a wrong type
    assert parsed.to_dict() == manifest, "the manifest does not survive a round trip through the CRD models"
    assert parsed.spec.runtime_ref.name  # required by the CRD
    return parsed
