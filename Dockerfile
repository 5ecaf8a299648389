# syntax=docker/dockerfile:1
# Ticker: one image for every role (`ticker serve`, `ticker worker`).
#   docker build -t ticker .
#   docker run --rm -p 8000:8000 -e TICKER_REDIS_URL=redis://redis:6379/0 ticker
#   docker run --rm -e TICKER_REDIS_URL=redis://redis:6379/0 ticker worker

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: compilers only here, for any dependency without a wheel ----------
FROM ${PYTHON_IMAGE} AS builder
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/ticker
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ticker ./ticker
COPY workers ./workers
# A wheel of the project, then the project and its pinned ranges into the venv.
RUN /opt/ticker/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/ticker/bin/pip install /wheels/*.whl

# --- runtime: the venv and nothing to build with -------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ticker" \
      org.opencontainers.image.description="Real-time breaking-news push service" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 ticker \
 && useradd --system --uid 10001 --gid ticker --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin ticker
COPY --from=builder /opt/ticker /opt/ticker
ENV PATH=/opt/ticker/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TICKER_HOST=0.0.0.0 \
    TICKER_PORT=8000
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# Liveness of the API role; a worker container overrides or disables it (compose does).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TICKER_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["ticker"]
CMD ["serve"]
