# synaptoroute-agents HTTP server: `docker build -t synaptoroute .` then see compose.yaml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_WAIT_POLICY=PASSIVE \
    SYNAPTOROUTE_DB=/data/synaptoroute.db

RUN pip install uv

WORKDIR /app
COPY pyproject.toml README.md ./
COPY synaptoroute_agents ./synaptoroute_agents
RUN uv pip install --system --no-cache ".[server,postgres]"

RUN useradd --create-home --uid 10001 app && mkdir /data && chown app /data
USER app
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"

CMD ["synaptoroute", "serve", "--host", "0.0.0.0", "--port", "8000"]
