# amogate: a slim image running as a non-root user. Secrets come from the environment or an
# env file at run time; nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=9095 \
    DATABASE_URL=sqlite:////app/storage/amogate.db \
    TOKEN_STORAGE_PATH=/app/storage/tokens.json \
    ERROR_LOG_PATH=/app/storage/error.log

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin amogate
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && mkdir -p /app/storage && chown amogate:amogate /app/storage

USER amogate
VOLUME ["/app/storage"]
EXPOSE 9095
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9095/health', timeout=4)" || exit 1
CMD ["amogate", "serve"]
