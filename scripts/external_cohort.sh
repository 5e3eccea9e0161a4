#!/usr/bin/env bash
# External validation of the shipped recipe on an unseen phantom cohort (docs/evaluation.md#external-validation).
# Renders a new natural phantom (generator seed EXTERNAL_SEED, default 1; EXTERNAL_SUBJECTS subjects, default 128,
# half PD; into EXTERNAL_OUT, default work/external), runs
# it through ingest -> facetubes -> voice, and scores it with the trained models of known_answer.sh natural
# (default: each training seed's fold-0 model, the one a demo with that train.seed would serve), applying each
# seed's subject calibration map from that evaluation (hypomimia external -> EXTERNAL_OUT/report/external.md).
# 128 subjects, because a 10-bin subject ECE cannot be read finely on the 32 of the cross-validation: a perfectly
# calibrated model shows ~0.15 there, ~0.085 on 128.
# Usage: bash scripts/known_answer.sh natural; bash scripts/external_cohort.sh [MODEL_DIR ...]
#        a calibration cohort, then a test cohort calibrated on it (docs/evaluation.md#measured):
#        bash scripts/external_cohort.sh
#        EXTERNAL_SEED=2 EXTERNAL_OUT=work/external_s2 EXTERNAL_CALIBRATION_COHORT=work/external/report \
#          bash scripts/external_cohort.sh
#        (~4 min rendering, ~2.5 min face tubes, ~1 min scoring per model on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=${EXTERNAL_OUT:-work/external}
ka=work/known_answer/natural/evaluate
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  for s in 0 1 2; do models+=("$ka/runs/i3d-f14-s4/seed$s/fold0"); done
fi
for m in "${models[@]}"; do
  [ -f "$m/metadata.json" ] || { echo "no trained model in $m: run 'bash scripts/known_answer.sh natural' first" >&2; exit 2; }
done
mkdir -p "$out"
python - "$out" <<'PY'
import os, sys
import yaml
p = yaml.safe_load(open("params.yaml"))
p["phantom"]["seed"] = int(os.environ.get("EXTERNAL_SEED", 1))  # not the training study's seed (0)
p["phantom"]["subjects"] = int(os.environ.get("EXTERNAL_SUBJECTS", 128))
yaml.safe_dump(p, open(f"{sys.argv[1]}/params.yaml", "w"), sort_keys=False)
PY
source scripts/phantom_study.sh
prepare_study "$out"   # the cohort passes the same validation gate as a training study
calib=()  # EXTERNAL_CALIBRATION_COHORT: another cohort's report folder; each model's Platt map is fitted there
[ -n "${EXTERNAL_CALIBRATION_COHORT:-}" ] && calib=(--calibration-cohort "$EXTERNAL_CALIBRATION_COHORT")
hypomimia external "${models[@]}" --params "$out/params.yaml" --ingest "$out/ingest" --tubes "$out/facetubes" \
  --voice "$out/voice" --evaluation "$ka/evaluation.json" --out "$out/report" "${calib[@]}"
