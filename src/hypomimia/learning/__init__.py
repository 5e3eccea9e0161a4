"""Learning from face tubes: clip sampling (``clips``), the training loop's pieces (``training``),
metrics at clip/video/subject level (``metrics``), DDP helpers (``ddp``), pooling held-out folds
(``crossval``) and the MLflow helpers (``mlflow_runs``)."""
