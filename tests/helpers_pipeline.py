"""Helpers of the pipeline tests: a fake KFP REST API (kfp.Client talks HTTP to it) and small params.

The fake implements the handful of v2beta1 endpoints that ``kfp.Client`` calls for runs, experiments
and recurring runs, records every request, and answers with the minimal JSON the client needs.
"""

import json
import re
import threading
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API = "/apis/v2beta1"


class LoopbackServer:
    """A fake API on 127.0.0.1 (a free port), serving ``self._handler()`` while in a ``with`` block and
    recording every request in ``requests``. Subclasses set their state, then call ``super().__init__()``."""

    def __init__(self):
        self.requests = []  # (method, path, query, headers with lower-case names, body)
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"
        self._t = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def _handler(self):
        raise NotImplementedError

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._srv.shutdown()
        self._srv.server_close()


class FakeKFP(LoopbackServer):
    def __init__(self, multi_user=False):
        self.multi_user = multi_user
        self.experiments, self.runs, self.recurring, self.pipelines = {}, {}, {}, {}
        super().__init__()

    def _handler(fake):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output quiet
                pass

            def _reply(self, obj, code=200):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("multipart/form-data"):
                    msg = BytesParser(policy=HTTP).parsebytes(
                        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
                    )
                    return {
                        p.get_param("name", header="content-disposition"): p.get_payload(decode=True).decode()
                        for p in msg.iter_parts()
                    }
                return json.loads(raw) if raw else None

            def _handle(self, method):
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                body = self._body() if method == "POST" else None
                fake.requests.append(
                    (method, u.path, q, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                p = u.path.removeprefix("/pipeline")  # Kubeflow platform: host=https://<gw>/pipeline
                if method == "GET" and p == f"{API}/healthz":
                    return self._reply({"multi_user": fake.multi_user})
                if method == "GET" and p == f"{API}/experiments":  # get-by-name uses ?filter=
                    name = json.loads(q["filter"])["predicates"][0]["stringValue"] if "filter" in q else None
                    exps = [e for e in fake.experiments.values() if name in (None, e["display_name"])]
                    return self._reply({"experiments": exps, "total_size": len(exps)} if exps else {})
                if method == "POST" and p == f"{API}/experiments":
                    e = dict(body, experiment_id=str(uuid.uuid4()))
                    fake.experiments[e["experiment_id"]] = e
                    return self._reply(e)
                if method == "POST" and p == f"{API}/runs":
                    r = dict(body, run_id=str(uuid.uuid4()), state="PENDING")
                    fake.runs[r["run_id"]] = r
                    return self._reply(r)
                if method == "GET" and (m := re.fullmatch(f"{API}/runs/([^/:]+)", p)):
                    return self._reply(dict(fake.runs[m[1]], state="SUCCEEDED"))
                if method == "POST" and p == f"{API}/recurringruns":
                    r = dict(body, recurring_run_id=str(uuid.uuid4()), status="ENABLED")
                    fake.recurring[r["recurring_run_id"]] = r
                    return self._reply(r)
                if method == "POST" and p == f"{API}/pipelines/upload":
                    pl = {
                        "pipeline_id": str(uuid.uuid4()),
                        "display_name": q.get("name"),
                        "spec": body["uploadfile"],
                    }
                    fake.pipelines[pl["pipeline_id"]] = pl
                    return self._reply({k: pl[k] for k in ("pipeline_id", "display_name")})
                if method == "POST" and p == f"{API}/pipelines/upload_version":
                    return self._reply(
                        {
                            "pipeline_id": q["pipelineid"],
                            "display_name": q.get("name"),
                            "pipeline_version_id": str(uuid.uuid4()),
                        }
                    )
                if method == "GET" and p == f"{API}/pipelines":  # get_pipeline_id(name)
                    name = json.loads(q["filter"])["predicates"][0]["stringValue"]
                    pls = [
                        {"pipeline_id": k, "display_name": v["display_name"]}
                        for k, v in fake.pipelines.items()
                        if v["display_name"] == name
                    ]
                    return self._reply({"pipelines": pls, "total_size": len(pls)} if pls else {})
                return self._reply({"error": f"not faked: {method} {p}", "code": 5}, 404)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        return H


def calls(fake: FakeKFP) -> list[tuple[str, str]]:
    """(method, path) of every request the fake received, in order."""
    return [(method, path) for method, path, *_ in fake.requests]


def body_of(fake: FakeKFP, method: str, path: str) -> dict:
    """JSON body of the last request to (method, path)."""
    return [body for m, p, _, _, body in fake.requests if (m, p) == (method, path)][-1]
