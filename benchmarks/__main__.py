"""`python -m benchmarks --out bench [--quick]`: run every benchmark, write results.json and results.md.

Each module in BENCHES exposes ``run(out: Path, quick: bool) -> list[dict]`` with rows
``{name, metric, value, unit, note}``. Targets are ratios measured within one run, because
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
from pathlib import Path

from hypomimia.logs import setup_logging, silence_native_logs, telemetry_off

BENCHES: list[str] = ["facetubes", "ingest", "validate", "explain", "pipeline", "phantom", "train"]
BENCHES += ["serving"]  # issue 15: endpoint latency, batching, load test
BENCHES += ["monitor"]  # issue 16: drift false alarms and detection, patient-course alerts


def _table(rows: list[dict]) -> str:
    lines = ["| bench | metric | value | unit | note |", "|---|---|---|---|---|"]
    for r in rows:
        v = r["value"]
        shown = f"{v:.4g}" if isinstance(v, float) else str(v)
        lines.append(f"| {r['name']} | {r['metric']} | {shown} | {r.get('unit', '')} | {r.get('note', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    ap.add_argument("--quick", action="store_true", help="smaller inputs (for smoke tests)")
    ap.add_argument("--only", nargs="*", default=None, help="subset of: " + ", ".join(BENCHES))
    args = ap.parse_args(argv)
    telemetry_off()
    silence_native_logs()  # as the CLI does: without it the face-tube bench printed ~740 mediapipe lines
    setup_logging()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for name in args.only or BENCHES:
        t0 = time.perf_counter()
        rows += importlib.import_module(f"benchmarks.{name}").run(args.out / name, args.quick)
        print(f"bench {name}: {time.perf_counter() - t0:.1f} s")
    meta = {"machine": platform.machine(), "python": platform.python_version(), "quick": args.quick}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (args.out / "results.md").write_text(_table(rows))
    print(_table(rows))


if __name__ == "__main__":
    main()
