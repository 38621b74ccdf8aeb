#!/usr/bin/env bash
# ship-and-check: the last step of `make run` (mk/lifecycle.mk passes the variables).
#
#   1. pulls models:/$REGISTERED@champion into $CHAMPION_DIR (every file checked against the
#      version's SHA256SUMS) and builds its serving image into $IMAGE_LAYOUT (layer cache, fixed
#      timestamps: an unchanged champion and binary give the same digest in about a second);
#   2. if the champion version, its SHA256SUMS, the image digest and the test split are those of
#      the last passed check, and the service that check started still runs and serves that
#      version, the check's result is reused; otherwise it (re)starts `catdog serve --model
#      models:/$REGISTERED@champion` on 127.0.0.1:$SERVE_PORT, evaluates the champion locally
#      and over HTTP on the test split, fails unless both accuracies are equal, and records the
#      check ($SERVE_DIR/check.key);
#   3. prints the summary, saying whether the check ran now or was reused.
set -euo pipefail
: "${CATDOG:?}" "${REGISTERED:?}" "${SERVE_DIR:?}" "${CHAMPION_DIR:?}" "${IMAGE_LAYOUT:?}" "${PREPARED:?}" "${SERVE_PORT:?}" "${VENV:?}" "${MLFLOW_TRACKING_URI:?}"
mkdir -p "$SERVE_DIR"
base="http://127.0.0.1:$SERVE_PORT"

rm -rf "$CHAMPION_DIR"
"$CATDOG" model pull "models:/$REGISTERED@champion" --out "$CHAMPION_DIR" 2>"$SERVE_DIR/pull.log" | tee "$SERVE_DIR/pull.txt"
grep -E '^(verified|warning)' "$SERVE_DIR/pull.log" || true
version=$(sed -n 's/^pulled [^ ]* version \([0-9]*\) .*/\1/p' "$SERVE_DIR/pull.txt")
sums=$(sha256sum "$CHAMPION_DIR/SHA256SUMS" 2>/dev/null | cut -c1-12 || echo none)
"$CATDOG" image build --model "$CHAMPION_DIR" --oci-layout "$IMAGE_LAYOUT" -q >"$SERVE_DIR/image.txt"
digest=$(awk '/^digest: /{print $2}' "$SERVE_DIR/image.txt")
split=$(jq -r .manifest_md5 "$PREPARED/prepared.json")

# What the check depends on, one field a line; the service line names the process it checked.
key=$(printf 'champion=%s/%s\nmodel_sha256sums=%s\nimage=%s\ntest_split=%s\n' "$REGISTERED" "$version" "$sums" "$digest" "$split")
pid=$(cat "$SERVE_DIR/serve.pid" 2>/dev/null || true)
serving=""
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  serving=$(curl -fsS --max-time 5 "$base/version" 2>/dev/null | jq -r '.model.name + "/" + .model.version' 2>/dev/null || true)
fi
changed=""
if [ -f "$SERVE_DIR/check.key" ]; then
  while IFS= read -r kv; do
    grep -qxF "$kv" "$SERVE_DIR/check.key" || changed="$changed ${kv%%=*}"
  done <<<"$key"
  if [ "$serving" != "$REGISTERED/$version" ] || ! grep -qxF "service_pid=$pid" "$SERVE_DIR/check.key"; then
    changed="$changed service"
  fi
else
  changed=" (no earlier check)"
fi

if [ -z "$changed" ]; then
  check="reused: champion, model files, image and test split unchanged and pid $pid still serving v$version since the check of $(date -r "$SERVE_DIR/check.key" '+%F %T')"
else
  rm -f "$SERVE_DIR/check.key"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  setsid nohup "$CATDOG" serve --model "models:/$REGISTERED@champion" --addr "127.0.0.1:$SERVE_PORT" --drain-delay 0s \
    >"$SERVE_DIR/serve.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$SERVE_DIR/serve.pid"
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$base/ready" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "serve exited:"; tail -20 "$SERVE_DIR/serve.log"; exit 1; }
    sleep 0.2
  done
  "$CATDOG" evaluate --model "$CHAMPION_DIR" --data "$PREPARED" --split test --json - >"$SERVE_DIR/evaluated.json"
  "$CATDOG" evaluate --server "$base" --data "$PREPARED" --split test --json - >"$SERVE_DIR/served.json"
  if [ "$(jq -r .accuracy "$SERVE_DIR/evaluated.json")" != "$(jq -r .accuracy "$SERVE_DIR/served.json")" ]; then
    echo "served accuracy $(jq -r .accuracy "$SERVE_DIR/served.json") != evaluated accuracy $(jq -r .accuracy "$SERVE_DIR/evaluated.json")"
    exit 1
  fi
  printf '%s\nservice_pid=%s\n' "$key" "$pid" >"$SERVE_DIR/check.key"
  check="re-checked now (changed:$changed): served over HTTP by pid $pid and evaluated locally"
fi
evaluated=$(jq -r .accuracy "$SERVE_DIR/evaluated.json")
served=$(jq -r .accuracy "$SERVE_DIR/served.json")
n=$(jq -r .n "$SERVE_DIR/served.json")

echo
echo "==================== catdog: summary ===================="
"$CATDOG" mlflow links || true
echo "MLflow champion:   $REGISTERED version $version (models:/$REGISTERED@champion): ${MLFLOW_TRACKING_URI%/}/#/models/$REGISTERED/versions/$version"
echo "dvc status:        $("$VENV/bin/dvc" status 2>&1 | tr '\n' ' ')"
echo "image:             $IMAGE_LAYOUT (OCI layout) digest $digest, labelled io.catdog.model.version=$version"
echo "service:           $base (metrics: $base/metrics; stop: make serve-down)"
echo "check:             $check"
echo "accuracy:          $served served over HTTP = $evaluated evaluated ($n test photos)"
