#!/usr/bin/env bash
# Instructions per request of the gateway (callgrind): the release binaries
# in TARGET_DIR (cargo build --release), the mocks as separate processes, one
# keep-alive connection (curl), RUST_LOG=warn, one worker. Two runs of N1 and
# N2 requests; the difference divided by N2-N1 takes out start-up and
# shutdown. Repeatable whatever else the machine is doing.
#
#   ./scripts/callgrind.sh target gateway            # no guardrail
#   ./scripts/callgrind.sh target pre_call           # an Aim pre_call guardrail
#   ./scripts/callgrind.sh target stream             # a stream of 8 chunks
#   ./scripts/callgrind.sh target messages           # POST /v1/messages to an anthropic/ deployment
#   ./scripts/callgrind.sh target messages_pre_call  # the same with an Aim pre_call guardrail
#   ./scripts/callgrind.sh target messages_stream    # a /v1/messages stream of 8 text deltas
#
# KEEP=DIR keeps both runs' callgrind output in DIR
# (callgrind.SCENARIO.N1 and .N2): `callgrind_annotate` on each, the
# difference per function is what N2-N1 requests cost.
set -euo pipefail
dir=$1; scenario=$2; n1=${3:-200}; n2=${4:-1200}
mock=$dir/release/gateway-mock; gw=$dir/release/gateway
tmp=$(mktemp -d)
up_port=$((20000 + RANDOM % 10000)); aim_port=$((up_port + 1)); gw_port=$((up_port + 2))
$mock upstream --port $up_port >/dev/null 2>&1 & up=$!
$mock aim --port $aim_port >/dev/null 2>&1 & aim=$!
sleep 0.5
curl -s -X POST -d '{"record":false,"chunks":8}' http://127.0.0.1:$up_port/__mock/options >/dev/null
curl -s -X POST -d '{"record":false,"chunks":8}' http://127.0.0.1:$up_port/__mock/anthropic/options >/dev/null
curl -s -X POST -d '{"record":false,"mode":"pass"}' http://127.0.0.1:$aim_port/__mock/options >/dev/null
case $scenario in
  gateway|pre_call|stream)
    model=openai/m; api_base=http://127.0.0.1:$up_port/v1; path=/v1/chat/completions
    headers=(-H 'content-type: application/json')
    fields='"messages":[{"role":"user","content":"hello there, how are you today?"}]' ;;
  messages|messages_pre_call|messages_stream)
    # The mock upstream serves Anthropic's Messages API too.
    model=anthropic/claude-m; api_base=http://127.0.0.1:$up_port; path=/v1/messages
    headers=(-H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -H 'x-api-key: sk-x')
    fields='"max_tokens":256,"messages":[{"role":"user","content":"hello there, how are you today?"}]' ;;
  *) echo "unknown scenario: $scenario" >&2; exit 2 ;;
esac
cat > $tmp/config.yaml <<YAML
model_list:
  - model_name: m
    litellm_params:
      model: $model
      api_base: $api_base
      api_key: sk-x
guardrails:
  - guardrail_name: g
    litellm_params:
      guardrail: aim
      mode: pre_call
      api_key: aim-mock-key
      api_base: http://127.0.0.1:$aim_port
YAML
body="{\"model\":\"m\",$fields"
case $scenario in
  *pre_call) body="$body,\"guardrails\":[\"g\"]" ;;
  *stream) body="$body,\"stream\":true" ;;
esac
body="$body}"
run() {
  local n=$1
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file=$tmp/cg.$n $gw --config $tmp/config.yaml --port $gw_port --host 127.0.0.1 --num-workers 1 >/dev/null 2>&1 & local g=$!
  for i in $(seq 1 200); do curl -s http://127.0.0.1:$gw_port/health/liveliness >/dev/null 2>&1 && break; sleep 0.1; done
  # One request checked first (in both runs, so it cancels out): a
  # misconfiguration must fail, not measure error answers.
  local status
  status=$(curl -s -o $tmp/first -w '%{http_code}' "${headers[@]}" -d "$body" http://127.0.0.1:$gw_port$path)
  if [ "$status" != 200 ]; then
    echo "$scenario: HTTP $status: $(head -c 400 $tmp/first)" >&2
    kill -TERM $g; kill $up $aim 2>/dev/null; exit 1
  fi
  local args=()
  for i in $(seq 1 $n); do
    [ $i -gt 1 ] && args+=(--next)
    args+=(-o /dev/null "${headers[@]}" -d "$body" http://127.0.0.1:$gw_port$path)
  done
  curl -s "${args[@]}" >/dev/null
  kill -TERM $g; wait $g 2>/dev/null || true
  grep -E "^summary|^totals" $tmp/cg.$n | awk '{print $2}' | head -1
}
a=$(run $n1); b=$(run $n2)
kill $up $aim 2>/dev/null || true
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp $tmp/cg.$n1 "$KEEP/callgrind.$scenario.$n1"; cp $tmp/cg.$n2 "$KEEP/callgrind.$scenario.$n2"; fi
echo "$scenario: $(( (b - a) / (n2 - n1) )) instructions/request ($a @ $n1, $b @ $n2)"
rm -rf $tmp
