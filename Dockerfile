# DevPocket API image: Debian's Python 3.11 in a virtualenv, run as an unprivileged user.
#   scripts/image build              (podman, no container engine needed; see docs/deployment.md)
#   docker build -t devpocket .
# Configuration comes from the environment at run time; no secret is baked in, and ENVIRONMENT is
# left to the operator (docs/deployment.md).

FROM debian:bookworm-slim AS build

# Only for builds behind a TLS-intercepting proxy: the path of a CA bundle mounted into the build
# (scripts/image mounts the host's). pip ignores it when empty; it is never copied into the image.
ARG PIP_CERT=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_PROGRESS_BAR=off

# Debian stable only takes security and bug fixes, and its mirrors drop superseded versions, so the
# packages are not pinned to exact versions (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, so that a code change reuses this layer. Every runtime dependency is pinned
# with its hashes (scripts/image lock) and installed from a wheel: no compiler needed.
COPY requirements.lock ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock

COPY pyproject.toml README.md ./
COPY src ./src
# The lock already holds every dependency; pip check proves it. The package itself is built with
# the setuptools that pip's build isolation fetches (pyproject.toml's build-system; it stays out of
# the venv). pip and setuptools are not needed at run time.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall -y pip setuptools


FROM debian:bookworm-slim AS runtime

LABEL org.opencontainers.image.title="devpocket-api" \
      org.opencontainers.image.description="DevPocket API: the server behind an AI-powered terminal for phones" \
      org.opencontainers.image.licenses="MIT"

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 devpocket \
    && useradd --uid 10001 --gid devpocket --no-create-home \
        --home-dir /var/lib/devpocket --shell /usr/sbin/nologin devpocket \
    && install -d -o devpocket -g devpocket -m 0700 /var/lib/devpocket

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEVPOCKET_DATA_DIR=/var/lib/devpocket

# Numeric, so that an orchestrator can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/devpocket
EXPOSE 8000

# Liveness with the image's own Python; assumes the default port of CMD.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

ENTRYPOINT ["devpocket"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
