#!/usr/bin/env bash
# The method's known-answer checks on the phantom, cross-validated over every test fold.
#   dynamic_only: same facial configurations in both classes, only timing differs -> a spatio-temporal
#                 model must still separate PD from controls on held-out subjects (target AUROC >= 0.9);
#   no_cue:       no cue carries the label at all -> it must stay near chance (it finds no leak).
# Runs the demo's stages with the demo's params (plus the setting) into work/known_answer/<setting>/,
# trains one model per test fold and pools the folds (hypomimia crossval -> crossval.json), then compares
# the I3D with the baselines on the same folds (hypomimia evaluate -> evaluate/evaluation.md).
# Usage: bash scripts/known_answer.sh [dynamic_only|no_cue] [FOLD ...]   (default: every fold)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
setting=${1:-dynamic_only}
shift || true
out=work/known_answer/$setting
mkdir -p "$out"
render=$(python - "$setting" "$out" <<'PY'
import json, sys
from pathlib import Path
import yaml
setting, out = sys.argv[1], Path(sys.argv[2])
p = yaml.safe_load(open("params.yaml"))
if setting == "dynamic_only":
    p["phantom"]["dynamic_only"] = True
elif setting == "no_cue":
    p["phantom"]["cues"] = {k: False for k in p["phantom"]["cues"]}
else:
    sys.exit(f"unknown setting {setting!r}: use dynamic_only or no_cue")
p["train"]["experiment"] = f"hypomimia-known-answer-{setting}"
p["train"]["registered_model"] = ""  # known-answer models never become champions
yaml.safe_dump(p, open(out / "params.yaml", "w"), sort_keys=False)
# same generator config as last time -> the videos are the same (deterministic): do not render again
done = out / "data" / "phantom.json"
wanted = {k: v for k, v in p["phantom"].items() if k != "workers"}
print("skip" if done.is_file() and json.loads(done.read_text())["config"] == wanted else "render")
PY
)
hypomimia config validate "$out/params.yaml"
if [ "$render" = render ]; then
  hypomimia phantom --params "$out/params.yaml" --out "$out/data"
fi
hypomimia ingest "$out/data/manifest.csv" --params "$out/params.yaml" --out "$out/ingest"
hypomimia facetubes --params "$out/params.yaml" --ingest "$out/ingest" --out "$out/facetubes" --cache work/tube-cache
hypomimia validate --params "$out/params.yaml" --ingest "$out/ingest" --tubes "$out/facetubes" --out "$out/validate"
folds=("$@")
if [ ${#folds[@]} -eq 0 ]; then
  n=$(python -c "import yaml; print(yaml.safe_load(open('$out/params.yaml'))['ingest']['folds'])")
  folds=($(seq 0 $((n - 1))))
fi
runs=()
for k in "${folds[@]}"; do
  hypomimia train --params "$out/params.yaml" --tubes "$out/facetubes" --ingest "$out/ingest" \
    --out "$out/train/fold$k" --fold "$k"
  runs+=("$out/train/fold$k")
done
hypomimia crossval "${runs[@]}" --out "$out/crossval.json"
# The comparison the study makes, on the same folds: the I3D runs above are reused; the 2D ResNet-50 is
# trained per fold, the landmark baselines fit in seconds; paired DeLong/bootstrap tests, Holm-corrected.
reuse=()
for r in "${runs[@]}"; do reuse+=(--reuse "$r"); done
hypomimia evaluate --params "$out/params.yaml" --tubes "$out/facetubes" --ingest "$out/ingest" --model "$out/train/fold${folds[0]}" \
  "${reuse[@]}" --out "$out/evaluate" --tracking-uri "${KNOWN_ANSWER_TRACKING:-off}" \
  --set "evaluate.models=${KNOWN_ANSWER_MODELS:-[i3d,resnet2d50,landmark_static,landmark_dynamic]}" \
  --set "evaluate.folds=[$(IFS=,; echo "${folds[*]}")]" --set 'evaluate.ablation.frames=[]'
