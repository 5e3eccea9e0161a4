"""The voice stage against the phantom's truth: how close each measure comes, and how well it tells PD
from control (docs/voice.md, "On the phantom's voices").

Reads a phantom folder (``truth/<video_id>.json``, its ``audio.speech`` block) and a voice output folder
(``voice.parquet``); prints, per measure, the error or correlation against the truth and the AUROC of
control > PD for the measure and for its truth. Usage, after rendering speech clips:

    hypomimia phantom --params P --out PH && hypomimia ingest PH/manifest.csv --params P --out ING
    hypomimia voice --params P --ingest ING --out VOICE
    python scripts/voice_agreement.py PH VOICE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

# measured column -> the truth's key in the sidecar's speech block
TRUTH = {
    "intensity_db": "intensity_db",
    "f0_sd_st": "f0_sd_st",
    "speech_rate_syl_s": "syllables_per_s",
    "hnr_db": "hnr_db",
    "vowel_space_hz2": "vowel_dispersion_hz",  # another scale (Hz, not Hz^2): correlation only
    "jitter_pct": "jitter_pct",
    "shimmer_pct": "shimmer_pct",
}


def paired(phantom: Path, voice: Path) -> pd.DataFrame:
    table = pd.read_parquet(voice / "voice.parquet")
    rows = []
    for r in table[table["status"] == "measured"].to_dict("records"):
        truth = json.loads((phantom / "truth" / f"{r['video_id']}.json").read_text())
        speech = (truth.get("audio") or truth)["speech"]
        rows.append(
            {
                "label": r["label"],
                **{m: r[m] for m in TRUTH},
                **{f"{m}_t": speech[k] for m, k in TRUTH.items()},
            }
        )
    return pd.DataFrame(rows)


def main(phantom: str, voice: str) -> None:
    d = paired(Path(phantom), Path(voice))
    control = (d["label"] == "control").astype(int)
    print(f"{len(d)} measured clips")
    for m in TRUTH:
        measured, truth = d[m], d[f"{m}_t"]
        rel = (measured - truth) / truth
        print(
            f"{m:>18}: error {np.mean(measured - truth):+.3f} (max |{np.max(np.abs(measured - truth)):.3f}|), "
            f"relative {np.mean(rel):+.3f} (max |{np.max(np.abs(rel)):.3f}|), r {np.corrcoef(measured, truth)[0, 1]:.2f}; "
            f"AUROC control > PD {roc_auc_score(control, measured):.2f} (truth {roc_auc_score(control, truth):.2f})"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
