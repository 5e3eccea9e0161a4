#!/usr/bin/env bash
# Drift monitoring on the demo's data (issue 16; scripts/demo.sh calls it after training, ~1.5 min).
# A window of fresh phantom subjects filmed through another camera (blur, darker, lower resolution,
# heavier compression) against the training data: Evidently drift report, ok | warn | retrain, and the
# retrain trigger.
#
# Inputs (defaults = what `make demo` wrote): REF_INGEST, REF_TUBES, MODEL (optional), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/hypomimia ] && export PATH="$PWD/.venv/bin:$PATH"
hm() { echo "+ hypomimia $*" >&2; hypomimia "$@"; }

REF_INGEST=${REF_INGEST:-work/ingest}
REF_TUBES=${REF_TUBES:-work/facetubes}
MODEL=${MODEL:-work/train/model.pt}
OUT=${OUT:-work/monitor}
W="$OUT/window"

# 5 new subjects (seed 101: nobody from the training data), 6 clips each like the training subjects (the
# same task mix: with 4 clips a quarter would speak instead of a sixth, and the share of clips with sound,
# audio_share, would drift with the protocol, not the camera), the demo's camera settings: a window of 30
# videos, monitor.min_window...
hm phantom --params params.yaml --subjects 5 --videos-per-subject 6 --seed 101 --out "$W/phantom"
# ...then seen through another camera: all four changes at once, milder (phantom.camera.CHANGES)
hm monitor camera "$W/phantom" "$W/camera" --change camera
hm ingest "$W/camera/manifest.csv" --params params.yaml --out "$W/ingest"
hm facetubes --params params.yaml --ingest "$W/ingest" --out "$W/facetubes"
# The sound of both sides: the audio tests (SNR, bandwidth) and, for a model that listens, its voice outputs
# (p_pd_voice) need the voice tables; the reference's is the one training read.
REF_VOICE=${REF_VOICE:-work/voice}
hm voice --params params.yaml --ingest "$W/ingest" --out "$W/voice"
voice=(--current-voice "$W/voice")
if [ -f "$REF_VOICE/voice.parquet" ]; then voice+=(--voice "$REF_VOICE"); fi

# The model's outputs (calibrated P(PD), uncertain share, embedding) are monitored too when it is
# there. Its reference is a sample of 30 of its held-out videos (whole subjects: 5, each with one speech clip,
# monitor.audio_min_subjects for the voice model's outputs): scoring clips is most
# of this step. Quality features are compared with the whole training cohort.
if [ -f "$MODEL" ]; then model=(--model "$MODEL" --max-scored-reference 30); else model=(--no-model); fi
hm monitor --params params.yaml --reference-ingest "$REF_INGEST" --reference-tubes "$REF_TUBES" \
  --ingest "$W/ingest" --tubes "$W/facetubes" "${voice[@]}" "${model[@]}" --out "$OUT"

cat <<MSG

monitoring demo done. Where to look:
  drift report (Evidently):  $OUT/drift.html
  decision + drivers:        $OUT/monitor.json   (retrain trigger: $OUT/retrain_trigger.json)
  patient courses:           hypomimia monitor patients --help   (known answer: docs/monitoring.md)
  scheduled monitor (KFP):   pipeline/monitor_pipeline.yaml  ->  hypomimia pipeline schedule --pipeline monitor --host URL
MSG
