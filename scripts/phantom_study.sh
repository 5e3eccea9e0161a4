# Sourced by the study scripts (known_answer.sh, external_cohort.sh): prepare_study OUT runs a phantom study's
# data stages with OUT/params.yaml: render the phantom (only when its config or the renderer's code changed since
# the last render: the phantom is deterministic), then ingest, facetubes, voice and the validation gate.
prepare_study() {
  local out=$1 render
  render=$(python - "$out" <<'PY'
import hashlib, json, sys
from pathlib import Path
import yaml
out = Path(sys.argv[1])
p = yaml.safe_load(open(out / "params.yaml"))
code = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(Path("src/hypomimia/phantom").rglob("*.py")))).hexdigest()
wanted = {"config": {k: v for k, v in p["phantom"].items() if k != "workers"}, "renderer_sha256": code}
stamp = out / "render.json"
print("skip" if stamp.is_file() and json.loads(stamp.read_text()) == wanted else "render")
(out / "render.wanted.json").write_text(json.dumps(wanted))
PY
)
  hypomimia config validate "$out/params.yaml"
  if [ "$render" = render ]; then
    rm -rf "$out/data"
    hypomimia phantom --params "$out/params.yaml" --out "$out/data"
    mv "$out/render.wanted.json" "$out/render.json"
  fi
  hypomimia ingest "$out/data/manifest.csv" --params "$out/params.yaml" --out "$out/ingest"
  hypomimia facetubes --params "$out/params.yaml" --ingest "$out/ingest" --out "$out/facetubes" --cache work/tube-cache
  hypomimia voice --params "$out/params.yaml" --ingest "$out/ingest" --out "$out/voice" --cache work/voice-cache
  hypomimia validate --params "$out/params.yaml" --ingest "$out/ingest" --tubes "$out/facetubes" --voice "$out/voice" \
    --out "$out/validate"
}
