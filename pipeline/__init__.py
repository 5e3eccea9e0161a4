"""The DAG (``pipeline.pipeline.create_pipeline``) and its compiled KFP package (``hypomimia_pipeline.yaml``)."""
