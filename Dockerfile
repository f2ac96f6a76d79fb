# dweb-agent: slim runtime image, non-root, `dweb-agent run` by default.
# Build stage: pdqhash is published as source only and needs a C++ compiler.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY config ./config
RUN python -m venv /opt/dweb-agent \
 && /opt/dweb-agent/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/dweb-agent/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home dweb
COPY --from=build /opt/dweb-agent /opt/dweb-agent
COPY config/agent.toml /etc/dweb-agent/agent.toml
ENV PATH=/opt/dweb-agent/bin:$PATH \
    DWEB_AGENT_CONFIG=/etc/dweb-agent/agent.toml \
    DWEB_AGENT_AGENT_DATA_DIR=/data \
    DWEB_AGENT_AGENT_HEALTH_HOST=0.0.0.0 \
    DWEB_AGENT_API_HOST=0.0.0.0
USER dweb
WORKDIR /data
VOLUME ["/data"]
# /healthz and /metrics; the HTTP API (every /v1 call needs a token: see the README).
EXPOSE 9464 9465
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)" || exit 1
CMD ["dweb-agent", "run"]
