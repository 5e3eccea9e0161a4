# syntax=docker/dockerfile:1.7
# CPU image of every pipeline stage. KFP runs each component in it as
# `python3 -m kfp.dsl.executor_main ...`, which imports `hypomimia` and calls the stage's run().
#   docker build -t ghcr.io/hypomimia/hypomimia:0.1.0 .
# Pin the base by digest in CI: docker buildx imagetools inspect python:3.11.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The lock first, on its own layer: code changes do not reinstall ~300 pinned packages.
# --no-deps is required: mediapipe declares protobuf<5, the lock (verified) has protobuf 6 for kfp.
COPY requirements/requirements.lock.txt /tmp/requirements.lock.txt
RUN pip install --no-deps -r /tmp/requirements.lock.txt
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN pip install --no-deps --no-build-isolation /src

FROM ${PYTHON_IMAGE}
# libGL/glib: OpenCV (a mediapipe dependency) loads them at import.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin hypomimia
COPY --from=build /opt/venv /opt/venv
# The KFP glue the component bodies import (components/pipeline_io.py), beside the package.
COPY components /opt/hypomimia/components
# The serving shell and the lock, for the serve-build component (hypomimia.inference.bento).
COPY serving /opt/hypomimia/serving
COPY requirements/requirements.lock.txt /opt/hypomimia/requirements/requirements.lock.txt
# the monitor pipeline's retrain step submits this compiled training pipeline (monitor.training_package)
COPY pipeline/hypomimia_pipeline.yaml /opt/hypomimia/pipeline/hypomimia_pipeline.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/hypomimia \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    DO_NOT_TRACK=true BENTOML_DO_NOT_TRACK=true GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1
USER 10001
WORKDIR /home/hypomimia
CMD ["hypomimia", "--help"]
