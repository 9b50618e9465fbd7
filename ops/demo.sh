#!/usr/bin/env bash
# The main command: sets up a fresh Debian 12 machine and runs infmllm end to end against local services.
# Today that is: install, start PostgreSQL and RabbitMQ, build, migrate, declare the task queues and check
# everything with `infmllm doctor`, run a tiny random-weight model on an image, and show the schema a job's results
# land in.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/lib.sh

bash ops/install-deps.sh
bash ops/services.sh start
require_swift

step "building infmllm (release)"
swift build -c release --product infmllm
infmllm="$(swift build -c release --show-bin-path)/infmllm"

step "migrating the database"
"$infmllm" migrate

step "checking the services"
"$infmllm" doctor

step "making a tiny random-weight model and asking it about an image"
"$infmllm" model init --preset tiny --seed 1 --out "${TMPDIR:-/tmp}/infmllm-tiny"
"$infmllm" infer --model "${TMPDIR:-/tmp}/infmllm-tiny" --image Tests/ImagingTests/Fixtures/images/rgb_640x427.jpg \
    --task ground --expression "the bright square" --beams 3 --max-new-tokens 12 --json

step "what a job's results look like in SQL"
PGPASSWORD=${INFMLLM_DB_PASSWORD:-infmllm} psql -h 127.0.0.1 -U "${INFMLLM_DB_USER:-infmllm}" \
    -d "${INFMLLM_DB_NAME:-infmllm}" -c '\d+ boxes' | sed -n '1,25p'
cat <<TXT

Ready. Try:
  $infmllm --help
  $infmllm migrate --status
  psql postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm -c 'SELECT job, image_uri, caption FROM captions LIMIT 10'
TXT
