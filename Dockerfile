# d24watch as a service: `docker build -t d24watch .` then see README.md (Docker).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    D24WATCH_CONFIG=/app/config/d24watch.toml
RUN groupadd --system --gid 10001 d24watch && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin d24watch
COPY --from=build /install /usr/local
COPY config /app/config
RUN mkdir -p /app/state && chown d24watch:d24watch /app/state
WORKDIR /app
# The database, the outbox and the WARC evidence files; config/d24watch.toml points here.
VOLUME ["/app/state"]
USER 10001:10001
EXPOSE 8024
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8024/healthz', timeout=4)"]
ENTRYPOINT ["d24watch"]
CMD ["run", "--listen", "0.0.0.0:8024"]
