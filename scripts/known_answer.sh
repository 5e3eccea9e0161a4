#!/usr/bin/env bash
# The method's central known-answer check on the phantom: in the dynamic-only setting (same facial
# configurations in both classes, only timing differs) a spatio-temporal model must still separate PD
# from controls on held-out subjects. Runs the same stages as the demo into work/known_answer/.
# Usage: bash scripts/known_answer.sh [dynamic_only|no_cue]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
setting=${1:-dynamic_only}
out=work/known_answer/$setting
mkdir -p "$out"
python - "$setting" "$out/params.yaml" <<'PY'
import sys, yaml
setting, target = sys.argv[1], sys.argv[2]
p = yaml.safe_load(open("params.yaml"))
if setting == "dynamic_only":
    p["phantom"]["dynamic_only"] = True
elif setting == "no_cue":
    p["phantom"]["cues"] = {k: False for k in p["phantom"]["cues"]}
else:
    sys.exit(f"unknown setting {setting!r}: use dynamic_only or no_cue")
p["train"]["experiment"] = f"hypomimia-known-answer-{setting}"
p["train"]["registered_model"] = ""
yaml.safe_dump(p, open(target, "w"), sort_keys=False)
PY
hypomimia config validate "$out/params.yaml"
hypomimia phantom --params "$out/params.yaml" --out "$out/data"
hypomimia ingest "$out/data/manifest.csv" --params "$out/params.yaml" --out "$out/ingest"
hypomimia facetubes --params "$out/params.yaml" --ingest "$out/ingest" --out "$out/facetubes" --cache work/tube-cache
hypomimia validate --params "$out/params.yaml" --ingest "$out/ingest" --tubes "$out/facetubes" --out "$out/validate"
hypomimia train --params "$out/params.yaml" --tubes "$out/facetubes" --ingest "$out/ingest" --out "$out/train"
echo "metrics: $out/train/metrics.json"
