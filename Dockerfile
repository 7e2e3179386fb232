# syntax=docker/dockerfile:1
# synaptoroute-agents HTTP server: `docker build -t synaptoroute .` then see compose.yaml.
#
# Two stages: `build` installs the package and its `server` and `postgres` extras with uv into a
# virtual environment at /opt/venv; `runtime` is a clean slim image that copies only that
# environment (no uv, no pip cache, no build files) and runs as an unprivileged user.

# ---------------------------------------------------------------------- build
FROM python:3.11-slim AS build

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_NO_CACHE_DIR=1

RUN pip install "uv>=0.5,<1"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY synaptoroute_agents ./synaptoroute_agents
RUN uv venv /opt/venv --python /usr/local/bin/python3.11 \
    && uv pip install --python /opt/venv/bin/python --no-cache ".[server,postgres]"

# ---------------------------------------------------------------------- runtime
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_WAIT_POLICY=PASSIVE \
    SYNAPTOROUTE_DB=/data/synaptoroute.db

RUN useradd --system --create-home --uid 10001 --user-group app \
    && mkdir /data \
    && chown app:app /data
COPY --from=build /opt/venv /opt/venv

USER app
WORKDIR /home/app
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

# No key is baked into the image. Give one at run time as a Docker secret
# (SYNAPTOROUTE_API_KEY_FILE=/run/secrets/<name>, see compose.yaml) or an env file
# (docker run --env-file app.env, with SYNAPTOROUTE_API_KEY=...). Without a key the server refuses
# to listen on 0.0.0.0 (add --allow-anonymous-writes to the command to accept anonymous writes).
CMD ["synaptoroute", "serve", "--host", "0.0.0.0", "--port", "8000"]
