"""Work the DAG hands to a Kubernetes cluster beyond its own pods: ``trainjob``, the Kubeflow Trainer v2
TrainJob that trains on several GPU nodes (``pipeline.train_launcher: trainjob``)."""
