# syntax=docker/dockerfile:1

# Build stage: a virtualenv with loyalty and its dependencies, built from this
# checkout. Nothing of the build toolchain reaches the runtime image.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/loyalty && /opt/loyalty/bin/pip install --upgrade pip
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/loyalty/bin/pip install .

# Runtime stage: non-root, migrations then the server.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 loyalty \
 && useradd --system --uid 10001 --gid loyalty --home-dir /var/lib/loyalty --create-home loyalty
COPY --from=build /opt/loyalty /opt/loyalty
ENV PATH=/opt/loyalty/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOYALTY_HOST=0.0.0.0 \
    LOYALTY_PORT=8000 \
    LOYALTY_LOG_FORMAT=json \
    LOYALTY_DATABASE_URL=sqlite+aiosqlite:////var/lib/loyalty/loyalty.db
USER loyalty
WORKDIR /var/lib/loyalty
VOLUME ["/var/lib/loyalty"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"]
# LOYALTY_DATABASE_URL comes from the environment (e.g. postgresql://user:pw@db/loyalty).
CMD ["sh", "-c", "loyalty db upgrade && exec loyalty serve"]
