"""Issue 26: a hidden face region moves its visibility column. Known answer on tiny phantom clips:
sunglasses over the eyes, a patch over the mouth (phantom.camera.OCCLUSIONS, re-encoded); and a
facetubes cache entry from before the metric is completed from its tube, equal to a fresh run."""

import json

import pandas as pd
import pytest

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.ingest import IngestConfig
from hypomimia.faces.quality import VISIBILITY_METRICS
from hypomimia.phantom.camera import OCCLUSIONS, apply_to_folder
from hypomimia.stages import facetubes, ingest, phantom
from tests.helpers_phantom import tiny

pytestmark = pytest.mark.slow  # renders, occludes and tracks a small study

TUBES = FacetubesConfig(workers=1)


def _tubes(folder, manifest):
    ingest.run(IngestConfig(folds=2, workers=1), manifest, folder / "ingest")
    return facetubes.run(TUBES, folder / "ingest", folder / "tubes").tubes.set_index("video_id")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("occlusion")
    clean = phantom.run(tiny(subjects=4, seed=3, workers=2), root / "clean" / "data", progress=False)
    out = {"clean": _tubes(root / "clean", clean.manifest), "root": root}
    for region in ("eyes", "mouth"):
        m = apply_to_folder(root / "clean" / "data", root / region / "data", OCCLUSIONS[region], fps=25)
        out[region] = _tubes(root / region, m)
    return out


@pytest.mark.parametrize("region", ["eyes", "mouth"])
def test_an_occluded_region_loses_its_visibility_and_only_it(tables, region):
    clean, hidden = tables["clean"], tables[region]
    assert list(hidden.index) == list(clean.index) and (hidden["status"] == "accepted").all()
    col = f"visibility_{region}"
    assert (hidden[col] < 0.5 * clean[col]).all(), (hidden[col], clean[col])
    for other in set(VISIBILITY_METRICS) - {col}:
        assert ((hidden[other] - clean[other]).abs() < 0.35 * clean[other]).all(), other


def test_a_cache_entry_without_visibility_is_completed_from_its_tube(tables, tmp_path):
    root = tables["root"]
    cache = root / "clean" / "tubes" / ".cache"
    for marker in cache.glob("*.json"):  # as an entry written before the metric existed
        entry = json.loads(marker.read_text())
        marker.write_text(json.dumps({k: v for k, v in entry.items() if k not in VISIBILITY_METRICS}))
    again = facetubes.run(TUBES, root / "clean" / "ingest", tmp_path / "tubes", cache_dir=cache)
    assert again.cache_hits == len(tables["clean"])
    pd.testing.assert_frame_equal(
        again.tubes.set_index("video_id")[list(VISIBILITY_METRICS)], tables["clean"][list(VISIBILITY_METRICS)]
    )
