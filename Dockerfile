# Interlock gateway image. The same image runs `interlock serve`, `interlock migrate` and, for a machine without a
# GPU, `interlock emulator` (see docker-compose.yml and deploy/README.md).
#
#   docker build -t interlock:0.1.0 .                              # core only
#   docker build -t interlock:0.1.0 --build-arg EXTRAS=litellm .   # + commercial providers through litellm

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the project into a self-contained virtualenv -------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/interlock
WORKDIR /src
# Dependencies first, from pyproject.toml alone (setuptools finds no packages yet and installs just the
# requirements), so a code change does not reinstall them. Every dependency ships manylinux wheels: no compiler.
COPY pyproject.toml ./
RUN /opt/interlock/bin/pip install ".${EXTRAS:+[$EXTRAS]}"
COPY . .
# Not editable: the packages (migrations, Lua scripts included) are copied into site-packages.
RUN /opt/interlock/bin/pip install --no-deps ".${EXTRAS:+[$EXTRAS]}"

# --- runtime ------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="interlock" \
      org.opencontainers.image.description="OpenAI-compatible AI gateway in front of vLLM workers and commercial APIs"
RUN groupadd --system --gid 10001 interlock \
 && useradd --system --uid 10001 --gid interlock --home-dir /var/lib/interlock --create-home interlock \
 && mkdir -p /etc/interlock
COPY --from=build /opt/interlock /opt/interlock
COPY deploy/docker/interlock.yaml /etc/interlock/interlock.yaml
# LITELLM_LOCAL_MODEL_COST_MAP: litellm uses its bundled price map, the gateway fetches nothing at run time.
# INTERLOCK_SERVER__HOST: a container must listen on all interfaces whatever the mounted settings file says.
ENV PATH=/opt/interlock/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    INTERLOCK_SERVER__HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/interlock
EXPOSE 8000
# Liveness only (/health): readiness (/ready) also depends on the database and the model workers, and an
# unhealthy upstream must not get the gateway restarted. Slim images have no curl, hence Python.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('INTERLOCK_SERVER__PORT', '8000'), timeout=2)"]
ENTRYPOINT ["interlock"]
CMD ["serve", "--config", "/etc/interlock/interlock.yaml"]
