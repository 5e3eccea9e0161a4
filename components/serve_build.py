from kfp import dsl
from kfp.dsl import Artifact, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def serve_build(params: str, model_uri: str, tracking_uri: str, bentoml_home: str, bento: Output[Artifact]):
    """Build the endpoint's bento for the promoted model (hypomimia.inference.bento.build_bento).

    Wire it after the blessing step with ``model_uri`` = the promoted version (e.g.
    ``models:/hypomimia-i3d@champion`` or ``models:/hypomimia-i3d/7``). ``bentoml_home``: the bento
    store (a PVC path on a cluster; empty -> BentoML's default). ``bento`` gets the tag and the
    exported ``.bento`` archive, ready for ``bentoml containerize``.
    """
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hypomimia.config.serve import ServeConfig
    from hypomimia.inference.bento import build_bento

    if tracking_uri == "off":  # no registry in this run (local tests): no champion to build
        print("tracking off: no registry model to build a bento for")
        return
    cfg = ServeConfig.model_validate_json(params)
    root = Path(os.environ.get("HYPOMIMIA_HOME", "/opt/hypomimia"))
    home = Path(bentoml_home) if bentoml_home else None
    tag = build_bento(model_uri or cfg.model, root / "serving", root / "requirements" / "requirements.lock.txt",
                      None, tracking_uri or cfg.tracking_uri, home)  # fmt: skip
    out = Path(bento.path)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **({"BENTOML_HOME": str(home)} if home else {})}
    subprocess.run([sys.executable, "-m", "bentoml", "export", tag, str((out / "hypomimia.bento").resolve())],
                   check=True, env=env, capture_output=True)  # fmt: skip
    (out / "bento.json").write_text(json.dumps({"tag": tag, "model": model_uri or cfg.model}))
    bento.metadata["tag"] = tag
