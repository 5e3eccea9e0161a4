"""A strip of frames from phantom clips, as one PNG, so a reader can see what the data looks like."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hypomimia.data.video import iter_frames


def frame_strip(videos: list[tuple[str, Path]], out_png: Path, frames: int = 6, side: int = 160) -> Path:
    """One row per ``(caption, video)``: ``frames`` evenly spaced frames, captioned on the left."""
    rows = []
    for caption, path in videos:
        all_frames = [f.rgb for f in iter_frames(path)]
        idx = np.linspace(0, len(all_frames) - 1, frames).round().astype(int)
        tiles = [cv2.resize(all_frames[i], (side, side), interpolation=cv2.INTER_AREA) for i in idx]
        label = np.full((side, side, 3), 255, np.uint8)
        for k, line in enumerate(caption.split("\n")):
            cv2.putText(
                label, line, (6, 24 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
            )
        rows.append(np.concatenate([label, *tiles], 1))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    return out_png
