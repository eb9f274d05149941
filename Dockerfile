# One image for every app process: web (the default CMD), Celery worker, Celery beat and migrations
# (docker-compose.yml picks the command). Configuration comes from the environment (config/settings/).
FROM python:3.11-slim

# gunicorn reads its worker count from WEB_CONCURRENCY; override it per deployment.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_PROFILE=production \
    VAR_DIR=/app/var \
    WEB_CONCURRENCY=3

WORKDIR /app
RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app

# Requirements first: code changes do not invalidate the dependency layer.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# The compiled catalogues are built here from the .po files (.mo files are not committed): Babel, from
# requirements.txt, compiles them without GNU gettext.
RUN python -m core.catalogues
# collectstatic needs settings the production profile accepts, not secrets: a random key that exists only in
# this build step (a key written here would be public), a host and an https address it never serves. The
# production profile's manifest storage writes hashed names that whitenoise then serves from STATIC_ROOT.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    ALLOWED_HOSTS=localhost SITE_URL=https://localhost \
    python manage.py collectstatic --noinput --verbosity 0 \
    && chown -R app:app /app/var

USER app
EXPOSE 8000

# /health/live/ is this process and its database (/health/ watches every loop, for monitoring: a stopped beat
# must not restart the web containers). It is exempt from the HTTPS redirect; the Host header must be one
# Django accepts, so use the first of ALLOWED_HOSTS (".example.com" -> "example.com"; production refuses "*").
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; \
         h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); \
         u.urlopen(u.Request('http://127.0.0.1:8000/health/live/', \
                             headers={'Host': h if h not in ('', '*') else 'localhost'}), timeout=4)"]

CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
