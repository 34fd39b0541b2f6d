#!/usr/bin/env bash
# Smoke test of the images, on this machine: builds both (Dockerfile targets api and worker), runs
# the migration, the API and a worker from them against this machine's PostgreSQL and Redis (a
# database and a queue prefix of their own), creates a key with the worker image's CLI, scores an
# iris job and an OCR text line through the API, stops both with SIGTERM and checks that they
# exit 0; checks what the images hold (no dev tooling; no onnxruntime or sharp in the API; a
# non-root user) and prints their sizes. CI runs it (.ci/run).
#
# Needs root. Installs Debian's docker.io when Docker is missing, and starts dockerd (without a
# bridge network: every container here runs with the host's network, so no traffic leaves
# loopback) when none runs, stopping it again at the end. When the Dockerfile's Node base cannot be
# pulled, builds one from Debian's packages once (deploy/docker/build-local-base.sh) and keeps it.
#
# Settings: DATABASE_URL (a server URL; the database name is replaced, default
# postgresql://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379),
# NODE_IMAGE (the base to pull, default the Dockerfile's), LOCAL_BASE (the base built when that
# cannot be pulled, default inferline-local-base:trixie).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "smoke: needs root (Docker, debootstrap, apt), and there is no sudo" >&2; exit 1; }
  exec sudo --preserve-env bash "$0" "$@"
fi
cd "$(dirname "$0")/.."

started=$SECONDS
log() { printf '\n== smoke: %s (%ds)\n' "$*" "$((SECONDS - started))"; }
fail() {
  echo "smoke: FAILED: $*" >&2
  exit 1
}

server_url=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
default_base=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)
node_image=${NODE_IMAGE:-$default_base}
local_base=${LOCAL_BASE:-inferline-local-base:trixie}
run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
database=inferline_smoke_$run_id
database_url=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' "$server_url" "$database")
prefix=smoke-$run_id
api_image=inferline-api:smoke
worker_image=inferline-worker:smoke
api_container=inferline-smoke-api-$run_id
worker_container=inferline-smoke-worker-$run_id
dockerd_pid=""
dot_env=""
logs=/var/log/inferline
mkdir -p "$logs"

# Debian's docker client (/usr/bin) speaks to Debian's dockerd and builds with its BuildKit.
docker_bin=""
docker_cli() { "$docker_bin" "$@"; }
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
megabytes() { echo $(($1 / 1000000)); }
image_size() { docker_cli image inspect -f '{{.Size}}' "$1"; }

cleanup() {
  local status=$?
  set +e
  if [ "$status" -ne 0 ]; then
    for c in "$api_container" "$worker_container"; do
      docker_cli logs --tail 40 "$c" 2>/dev/null | sed "s/^/$c: /"
    done
  fi
  [ -n "$docker_bin" ] && docker_cli rm -f "$api_container" "$worker_container" >/dev/null 2>&1
  [ -n "$dot_env" ] && rm -f "$dot_env"
  psql "$server_url" -qc "drop database if exists \"$database\" with (force)" >/dev/null 2>&1
  redis-cli -u "$redis_url" --scan --pattern "$prefix*" 2>/dev/null | xargs -r redis-cli -u "$redis_url" del >/dev/null 2>&1
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
  fi
  echo "smoke: $([ "$status" -eq 0 ] && echo passed || echo failed) in $((SECONDS - started)) s"
  exit "$status"
}
trap cleanup EXIT

log "docker"
if ! command -v dockerd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show docker.io >/dev/null 2>&1 || apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
docker_bin=$(command -v /usr/bin/docker || command -v docker)
if ! docker_cli info >/dev/null 2>&1; then
  setsid dockerd --bridge=none --iptables=false --ip6tables=false >"$logs/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do
    docker_cli info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited: $(tail -n 5 "$logs/dockerd.log")"
    sleep 0.5
  done
  docker_cli info >/dev/null 2>&1 || fail "dockerd did not answer within 30 s"
fi
docker_cli version --format 'client {{.Client.Version}}, server {{.Server.Version}}'

log "base image"
if docker_cli image inspect "$node_image" >/dev/null 2>&1 || timeout 60 "$docker_bin" pull -q "$node_image" >/dev/null 2>&1; then
  base=$node_image
else
  base=$local_base
  if docker_cli image inspect "$base" >/dev/null 2>&1; then
    echo "$node_image cannot be pulled; using $base, built earlier"
  else
    echo "$node_image cannot be pulled; building $base from Debian's packages"
    command -v debootstrap >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    DOCKER=$docker_bin deploy/docker/build-local-base.sh "$base"
  fi
fi
echo "base: $base ($(docker_cli run --rm "$base" node --version))"

log "build"
for target in api worker; do
  image=$([ "$target" = api ] && echo "$api_image" || echo "$worker_image")
  DOCKER_BUILDKIT=1 docker_cli build --network host --build-arg "NODE_IMAGE=$base" --target "$target" -t "$image" . >"$logs/build-$target.log" 2>&1 ||
    fail "docker build --target $target: $(tail -n 30 "$logs/build-$target.log")"
  echo "built $image"
done

log "image contents"
for image in "$api_image" "$worker_image"; do
  [ "$(docker_cli run --rm "$image" id -u)" != 0 ] || fail "$image runs as root"
  dev=$(docker_cli run --rm "$image" find /app -path '*/node_modules/*' -type d \( -name tsx -o -name typescript -o -name esbuild -o -name vitest \) -prune -print)
  [ -z "$dev" ] || fail "$image holds development tools: $dev"
  [ -z "$(docker_cli run --rm "$image" find /app/dist -name '*.ts')" ] || fail "$image holds TypeScript"
  [ -z "$(docker_cli run --rm "$image" find /app -name '.env*')" ] || fail "$image holds a .env file"
done
native=$(docker_cli run --rm "$api_image" find /app -path '*/node_modules/*' -type d \( -name onnxruntime-node -o -name sharp -o -name 'sharp-*' \) -prune -print)
[ -z "$native" ] || fail "the API image holds $native"
echo "non-root, compiled, no development tools; the API image has no onnxruntime or sharp"

log "migrate"
docker_cli run --rm --network host -e "DATABASE_URL=$database_url" "$worker_image" node dist/migrate.js

log "key"
key=$(docker_cli run --rm --network host -e "DATABASE_URL=$database_url" "$worker_image" inferline keys create --tenant smoke | tail -n 1)
[[ "$key" == il_* ]] || fail "inferline keys create printed no key: $key"
# The API and the CLI take these settings from a .env in their working directory (/app); the
# worker from its environment.
dot_env=$(mktemp)
chmod 644 "$dot_env"
printf 'DATABASE_URL=%s\nREDIS_URL=%s\nQUEUE_PREFIX=%s\n' "$database_url" "$redis_url" "$prefix" >"$dot_env"
listed=$(docker_cli run --rm --network host -v "$dot_env:/app/.env:ro" "$worker_image" inferline keys list --tenant smoke) ||
  fail "inferline keys list did not read DATABASE_URL from /app/.env"
# One active key, listed by its prefix (the first ten characters of the key), never in full.
[ "$(grep -c ' active$' <<<"$listed")" = 1 ] && grep -q "${key:0:10}" <<<"$listed" && ! grep -q "$key" <<<"$listed" ||
  fail "inferline keys list: $listed"

log "api and worker"
api_port=$(free_port)
metrics_port=$(free_port)
docker_cli run -d --name "$api_container" --network host -v "$dot_env:/app/.env:ro" -e "PORT=$api_port" -e HOST=127.0.0.1 "$api_image" >/dev/null
docker_cli run -d --name "$worker_container" --network host -e "DATABASE_URL=$database_url" -e "REDIS_URL=$redis_url" -e "QUEUE_PREFIX=$prefix" \
  -e "METRICS_PORT=$metrics_port" "$worker_image" >/dev/null
api=http://127.0.0.1:$api_port
ready=""
for _ in $(seq 1 120); do
  if curl -sf "$api/readyz" >/dev/null && curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null; then
    ready=yes
    break
  fi
  sleep 0.5
done
[ -n "$ready" ] || fail "the API and the worker were not ready within 60 s: $(curl -s "$api/readyz")"

# Submits a job and waits for it; prints the finished job.
run_job() {
  local submitted id
  submitted=$(curl -sf -X POST "$api/v1/jobs" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary @-) ||
    fail "submit refused"
  id=$(node -e 'console.log(JSON.parse(process.argv[1]).id)' "$submitted")
  curl -sf "$api/v1/jobs/$id?wait=30" -H "Authorization: Bearer $key"
}
# Prints the value at a dotted path of a JSON document, or fails with the document.
json_field() {
  node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v?.[k]; if (v === undefined) process.exit(1); console.log(v)' "$1" "$2" ||
    fail "no $2 in $1"
}

log "jobs"
iris=$(run_job <<<'{"model":"iris","inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}')
[ "$(json_field "$iris" status)" = succeeded ] || fail "iris job: $iris"
[ "$(json_field "$iris" result.classifications.0.label)" = setosa ] || fail "iris job: $iris"
echo "iris: setosa"
image=$(base64 -w0 deploy/smoke/text-line.png)
ocr=$(run_job <<<"{\"model\":\"ocr-text-line\",\"inputs\":[{\"name\":\"image\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"$image\"]}]}")
[ "$(json_field "$ocr" status)" = succeeded ] || fail "OCR job: $ocr"
[ "$(json_field "$ocr" result.decoded.0.text)" = "HELLO INFERLINE" ] || fail "OCR job: $ocr"
echo "ocr-text-line: HELLO INFERLINE"

log "health checks"
for c in "$api_container" "$worker_container"; do
  health=""
  for _ in $(seq 1 60); do
    health=$(docker_cli inspect -f '{{.State.Health.Status}}' "$c")
    [ "$health" = healthy ] && break
    sleep 1
  done
  [ "$health" = healthy ] || fail "$c is $health"
done
echo "both healthy"

log "SIGTERM"
docker_cli kill -s TERM "$api_container" "$worker_container" >/dev/null
for c in "$api_container" "$worker_container"; do
  code=$(timeout 60 "$docker_bin" wait "$c") || fail "$c did not stop within 60 s"
  [ "$code" = 0 ] || fail "$c exited $code"
done
echo "both exited 0"

log "sizes"
base_size=$(image_size "$base")
printf '%-28s %6s MB\n' "$base" "$(megabytes "$base_size")"
for image in "$api_image" "$worker_image"; do
  size=$(image_size "$image")
  printf '%-28s %6s MB, %s MB over the base\n' "$image" "$(megabytes "$size")" "$(megabytes $((size - base_size)))"
done
added_api=$(($(image_size "$api_image") - base_size))
added_worker=$(($(image_size "$worker_image") - base_size))
[ "$added_api" -le 200000000 ] || fail "the API image adds more than 200 MB to its base"
[ "$added_worker" -le 500000000 ] || fail "the worker image adds more than 500 MB to its base"
if [ "$base" = "$node_image" ]; then
  # On a slim official Node base: the images in all.
  [ "$(image_size "$api_image")" -le 400000000 ] || fail "the API image is larger than 400 MB"
  [ "$(image_size "$worker_image")" -le 700000000 ] || fail "the worker image is larger than 700 MB"
fi
