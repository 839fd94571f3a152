# taskbot as a container: `docker run -p 8080:8080 IMAGE` serves HTTP on $PORT (the embedded
# local Taskcluster with a demo push unless TASKCLUSTER_ROOT_URL is set); `docker run -it IMAGE`
# opens the console chat instead. Mount a volume on /var/lib/taskbot to keep the SQLite store,
# or set DATABASE_URL to use PostgreSQL.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 taskbot \
    && useradd --system --uid 10001 --gid taskbot --create-home --home-dir /home/taskbot taskbot \
    && install -d -o taskbot -g taskbot /var/lib/taskbot

# Installed from a copy of the source that is then removed, so `python -m bot` imports the
# installed package whatever the working directory.
COPY pyproject.toml constraints.txt README.md LICENSE /tmp/taskbot/
COPY grammar /tmp/taskbot/grammar
COPY bot /tmp/taskbot/bot
RUN cd /tmp/taskbot \
    && pip install -c constraints.txt . \
    && cd / \
    && rm -rf /tmp/taskbot

USER taskbot
WORKDIR /home/taskbot
ENV PORT=8080 \
    TASKBOT_DATA_DIR=/var/lib/taskbot
EXPOSE 8080

# Python's standard library only: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"]

CMD ["python", "-m", "bot"]
