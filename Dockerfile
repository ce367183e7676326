# syntax=docker/dockerfile:1
# lasor images. Targets:
#   datagen  - lasor-datagen + Dask worker/scheduler, headless pyrender (Mesa EGL, OSMesa fallback)
#   trainer  - lasor-train / lasor-eval / lasor-predict (CPU torch by default;
#              GPU hosts: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128)
# Nothing is downloaded at run time: the embedded body model ships inside the package.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
    && pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin lasor \
    && mkdir -p /data /runs /certs \
    && chown lasor:lasor /data /runs /certs
WORKDIR /opt/lasor
COPY pyproject.toml README.md LICENSE ./
COPY docker/constraints.txt ./docker/constraints.txt
COPY shared ./shared
COPY datagen ./datagen
COPY trainer ./trainer

FROM base AS datagen
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libegl1=1.6.0-1 libgl1=1.6.0-1 libgl1-mesa-dri=22.3.6-1+deb12u2 \
       libglu1-mesa=9.0.2-1.1 libosmesa6=22.3.6-1+deb12u2 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --constraint docker/constraints.txt ".[datagen]"
COPY manifests ./manifests
ENV PYOPENGL_PLATFORM=egl
USER 1000:1000
ENTRYPOINT ["lasor-datagen"]
CMD ["--help"]

FROM base AS trainer
RUN pip install --constraint docker/constraints.txt ".[train]"
COPY manifests ./manifests
USER 1000:1000
ENTRYPOINT ["lasor-train"]
CMD ["--help"]
