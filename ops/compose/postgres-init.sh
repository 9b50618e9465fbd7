#!/bin/bash
# Runs once, when the compose PostgreSQL's data volume is first created: the group roles the migrations grant
# rights to, and a login in each for the parts of the system (workers, clients such as enqueue, readers), so that
# only the one-shot migration uses the owner. Passwords come from the environment (defaults are for a local trial).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v worker_pw="${INFMLLM_WORKER_DB_PASSWORD:-infmllm-worker}" \
    -v client_pw="${INFMLLM_CLIENT_DB_PASSWORD:-infmllm-client}" \
    -v reader_pw="${INFMLLM_READER_DB_PASSWORD:-infmllm-reader}" <<'SQL'
CREATE ROLE infmllm_worker NOLOGIN;
CREATE ROLE infmllm_client NOLOGIN;
CREATE ROLE infmllm_reader NOLOGIN;
SELECT format('CREATE ROLE infmllm_worker_login LOGIN PASSWORD %L IN ROLE infmllm_worker', :'worker_pw') \gexec
SELECT format('CREATE ROLE infmllm_client_login LOGIN PASSWORD %L IN ROLE infmllm_client', :'client_pw') \gexec
SELECT format('CREATE ROLE infmllm_reader_login LOGIN PASSWORD %L IN ROLE infmllm_reader', :'reader_pw') \gexec
SQL
