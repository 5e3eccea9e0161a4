"""Face tubes of phantom videos keep what the phantom animated (read back against its truth sidecars)."""

import json

import numpy as np
import pandas as pd
import pytest

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.faces.landmarks import eye_aspect_ratio
from hypomimia.faces.tube import extract_tube
from hypomimia.phantom.realism import count_blinks
from hypomimia.stages.phantom import run
from tests.helpers_phantom import tiny


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom_tubes")
    result = run(tiny(subjects=4, videos_per_subject=2, duration_s=4.0, tasks=["rest"]), root, progress=False)
    return root, pd.read_csv(result.manifest).to_dict("records")


@pytest.mark.parametrize("between", ["linear", "flow"])
def test_blinks_survive_landmarks_between_keyframes(phantom, between):
    """FaceMesh on every 3rd frame (the default spacing), interpolation (the default) or optical flow
    between: blinks in the tube landmarks match the truth."""
    root, rows = phantom
    cfg = FacetubesConfig(workers=1, between_keyframes=between)
    assert cfg.mesh_every == 3
    found, true = [], []
    for r in rows:
        tube = extract_tube(root / r["path"], cfg)
        truth = json.loads((root / "truth" / f"{r['video_id']}.json").read_text())
        found.append(len(count_blinks(eye_aspect_ratio(tube.landmarks.astype(float)), tube.fps)))
        true.append(len(truth["blinks"]))
        if between == "flow":
            assert tube.work["flow_frames"] > 0.5 * len(tube.valid)  # the flow, not FaceMesh, did most frames
    assert sum(true) >= 3  # the clips blinked at all
    assert np.abs(np.array(found) - np.array(true)).max() <= 1, (found, true)
