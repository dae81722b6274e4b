# sdrest in a container: built with the same steps as a host install (./install.sh), run as a
# non-root user with the models and the data (jobs, images, users, keys) in volumes.
#
#   docker build -t sdrest .                                   CPU
#   docker build -t sdrest:cuda --build-arg BACKEND=cuda .     CUDA (run with --gpus all)
#   docker run -p 127.0.0.1:8080:8080 -v "$PWD/models:/models" -v sdrest-data:/data sdrest
#
# Settings are sdrest serve's flags after the image name, or SDREST_* variables (-e SDREST_AUTH=jwt).
# The image can be a cluster's API node or worker too (the postgres extra is in): `sdrest worker`
# or `serve --no-worker` with SDREST_STORE=postgresql://... (docs/scale-out.md).
# See compose.example.yaml and docs/deployment.md.

ARG BACKEND=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_VERSION=12.4.1

# --- the base of each stage, by backend ---
FROM ${PYTHON_IMAGE} AS build-cpu
FROM ${PYTHON_IMAGE} AS run-cpu
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu22.04 AS build-cuda
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu22.04 AS run-cuda

# --- build: compilers only here ---
FROM build-${BACKEND} AS build
ARG BACKEND
# An image runs on other CPUs than the one that built it: no -march=native by default.
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake ninja-build git \
       python3 python3-venv python3-dev libpam0g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN backend_flag=""; if [ "$BACKEND" = cuda ]; then backend_flag=--cuda; fi \
    && CMAKE_ARGS="$CMAKE_ARGS" PYTHON=python3 ./install.sh --venv /opt/sdrest/venv --models-dir /models --postgres $backend_flag \
    && /opt/sdrest/venv/bin/sdrest --version

# --- run: the venv, the runtime libraries, an unprivileged user ---
FROM run-${BACKEND}
ARG BACKEND
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The CUDA images have no Python: the same system Python the build stage made the venv from.
RUN python=""; if [ "$BACKEND" = cuda ]; then python=python3; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libpam0g $python \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /data --shell /usr/sbin/nologin sdrest \
    && mkdir -p /data /models \
    && chown sdrest:sdrest /data /models
COPY --from=build /opt/sdrest/venv /opt/sdrest/venv
COPY --from=build --chown=sdrest:sdrest /models /models
# Listening on every interface of the container, the server still answers only to the names in
# SDREST_ALLOWED_HOSTS (besides localhost and loopback addresses): a DNS-rebinding page cannot reach
# it through the published port. Add the names clients use (-e SDREST_ALLOWED_HOSTS=sd.lan,...).
ENV PYTHONUNBUFFERED=1 \
    SDREST_HOST=0.0.0.0 \
    SDREST_ALLOWED_HOSTS=localhost \
    SDREST_PORT=8080 \
    SDREST_DATA_DIR=/data \
    SDREST_MODELS_DIR=/models
USER 10001:10001
WORKDIR /data
VOLUME ["/data", "/models"]
EXPOSE 8080
# openapi.json answers without credentials whatever --auth is.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["/opt/sdrest/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/openapi.json', timeout=4)"]
ENTRYPOINT ["/opt/sdrest/venv/bin/sdrest"]
CMD ["serve"]
