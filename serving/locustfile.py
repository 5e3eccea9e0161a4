"""Load test of the endpoint (run by `make loadtest` / `python -m benchmarks --only serving`).

Locust runs as its own process (gevent cannot share a process with torch):

    locust -f serving/locustfile.py --headless -u 8 -r 8 -t 30s --host http://127.0.0.1:3000 --csv out

Env: HYPOMIMIA_API_KEY (the key), LOAD_ENDPOINT (predict | predict_tube), LOAD_FILE (the clip or
the tube .npy/.npz to post). Only a 200 with a probability counts as a success.
"""

import os

from locust import HttpUser, constant, task

ENDPOINT = os.environ.get("LOAD_ENDPOINT", "predict")
FIELD = "tube" if ENDPOINT == "predict_tube" else "video"
with open(os.environ["LOAD_FILE"], "rb") as f:
    PAYLOAD = f.read()
HEADERS = {"Authorization": f"Bearer {os.environ.get('HYPOMIMIA_API_KEY', '').split(',')[0]}"}


class Clinic(HttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        files = {FIELD: ("upload", PAYLOAD, "application/octet-stream")}
        with self.client.post(
            f"/{ENDPOINT}", files=files, headers=HEADERS, catch_response=True, timeout=120
        ) as r:
            if r.status_code != 200 or '"p_pd"' not in r.text:
                r.failure(f"{r.status_code}: {r.text[:120]}")
