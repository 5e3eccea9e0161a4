"""One module per pipeline stage, each with a pure ``run(cfg, inputs..., out_dir) -> Result``."""
