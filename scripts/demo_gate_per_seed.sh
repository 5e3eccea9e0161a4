#!/usr/bin/env bash
# Is the demo's blessing decision a property of the recipe? The demo's evaluate (params.yaml: one training
# seed, its folds and models) once per train.seed, on the natural phantom's runs that
# `scripts/known_answer.sh natural` trained (reused: same task spec and data, nothing retrains; ~1.5 min a seed).
# Usage: bash scripts/demo_gate_per_seed.sh [SEED ...]     (default: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
ka=work/known_answer/natural
if [ ! -d "$ka/evaluate/runs" ]; then
  echo "no natural runs in $ka/evaluate/runs: run 'bash scripts/known_answer.sh natural' first" >&2
  exit 2
fi
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for s in "${seeds[@]}"; do
  out=work/demo_gate/seed$s
  rm -rf "$out" && mkdir -p "$out"
  ln -s "$(realpath "$ka/evaluate/runs")" "$out/runs"
  hypomimia evaluate --params params.yaml --tubes "$ka/facetubes" --ingest "$ka/ingest" --voice "$ka/voice" \
    --model "$ka/train/fold0" --out "$out" --tracking-uri off --set "train.seed=$s" --set "evaluate.seeds=[$s]" \
    > "$out/log.txt" 2>&1 || { tail -20 "$out/log.txt" >&2; exit 1; }
  python - "$out" "$s" <<'PY'
import json, sys
out, seed = sys.argv[1], sys.argv[2]
e = json.load(open(f"{out}/evaluation.json"))
s = e["settings"][e["reference"]]["pooled"]["subject"]
verdict = "blessed" if e["blessing"]["blessed"] else "not blessed"
print(f"train.seed {seed}: {verdict}; subject AUROC {s['auroc']:.3f}, 95% CI {s['auroc_ci95'][0]:.3f}-{s['auroc_ci95'][1]:.3f}, "
      f"{s['n']} subjects (floor {e['blessing']['thresholds']['min_auroc_lower_ci']})")
PY
done
