#!/usr/bin/env bash
# End of `make demo`: start the endpoint on the demo's model (work/train), post one phantom clip with
# curl, print the answer, stop the server. Needs work/train and data/phantom from the demo's stages.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PORT="${HYPOMIMIA_DEMO_PORT:-3097}"
export HYPOMIMIA_API_KEY="${HYPOMIMIA_API_KEY:-demo-$(python -c 'import secrets; print(secrets.token_hex(8))')}"
export HYPOMIMIA_PREDICTION_LOG="${HYPOMIMIA_PREDICTION_LOG:-work/predictions}"
CLIP=$(python - <<'PY'
import pandas as pd
rows = pd.read_parquet("work/ingest/ingested.parquet")
rows = rows[rows["status"] == "accepted"]
speech = rows[rows["task"] == "speech"]  # a clip with a voice: the answer shows every modality
print((speech if len(speech) else rows)["abs_path"].iloc[0])
PY
)
echo "+ hypomimia serve --model work/train --port $PORT" >&2
hypomimia serve --model work/train --host 127.0.0.1 --port "$PORT" > work/serve-demo.log 2>&1 &
SERVER=$!
trap 'kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { echo "serve: the server stopped; see work/serve-demo.log" >&2; exit 1; }
  sleep 0.5
done
echo "+ curl -H 'Authorization: Bearer ***' -F video=@<phantom clip> http://127.0.0.1:$PORT/predict" >&2
curl -fsS -H "Authorization: Bearer $HYPOMIMIA_API_KEY" -F "video=@$CLIP;type=video/mp4" \
  -F subject_ref=demo-subject "http://127.0.0.1:$PORT/predict" \
  | python -c 'import json, sys; r = json.load(sys.stdin); r.pop("clips"); print("serve: POST /predict ->", json.dumps(r))'
