#!/usr/bin/env bash
# Instructions per request of the gateway (callgrind): the release binaries
# in TARGET_DIR (cargo build --release), the mocks as separate processes, one
# keep-alive connection (curl), RUST_LOG=warn, one worker. Two runs of N1 and
# N2 requests; the difference divided by N2-N1 takes out start-up and
# shutdown. Repeatable whatever else the machine is doing.
#
#   ./scripts/callgrind.sh target gateway     # no guardrail
#   ./scripts/callgrind.sh target pre_call    # an Aim pre_call guardrail
set -euo pipefail
dir=$1; scenario=$2; n1=${3:-200}; n2=${4:-1200}
mock=$dir/release/gateway-mock; gw=$dir/release/gateway
tmp=$(mktemp -d)
up_port=$((20000 + RANDOM % 10000)); aim_port=$((up_port + 1)); gw_port=$((up_port + 2))
$mock upstream --port $up_port >/dev/null 2>&1 & up=$!
$mock aim --port $aim_port >/dev/null 2>&1 & aim=$!
sleep 0.5
curl -s -X POST -d '{"record":false}' http://127.0.0.1:$up_port/__mock/options >/dev/null
curl -s -X POST -d '{"record":false,"mode":"pass"}' http://127.0.0.1:$aim_port/__mock/options >/dev/null
cat > $tmp/config.yaml <<YAML
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_base: http://127.0.0.1:$up_port/v1
      api_key: sk-x
guardrails:
  - guardrail_name: g
    litellm_params:
      guardrail: aim
      mode: pre_call
      api_key: aim-mock-key
      api_base: http://127.0.0.1:$aim_port
YAML
if [ "$scenario" = pre_call ]; then
  body='{"model":"m","messages":[{"role":"user","content":"hello there, how are you today?"}],"guardrails":["g"]}'
else
  body='{"model":"m","messages":[{"role":"user","content":"hello there, how are you today?"}]}'
fi
run() {
  local n=$1
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file=$tmp/cg.$n $gw --config $tmp/config.yaml --port $gw_port --host 127.0.0.1 --num-workers 1 >/dev/null 2>&1 & local g=$!
  for i in $(seq 1 200); do curl -s http://127.0.0.1:$gw_port/health/liveliness >/dev/null 2>&1 && break; sleep 0.1; done
  local args=()
  for i in $(seq 1 $n); do
    [ $i -gt 1 ] && args+=(--next)
    args+=(-o /dev/null -H 'content-type: application/json' -d "$body" http://127.0.0.1:$gw_port/v1/chat/completions)
  done
  curl -s "${args[@]}" >/dev/null
  kill -TERM $g; wait $g 2>/dev/null || true
  grep -E "^summary|^totals" $tmp/cg.$n | awk '{print $2}' | head -1
}
a=$(run $n1); b=$(run $n2)
kill $up $aim 2>/dev/null || true
echo "$scenario: $(( (b - a) / (n2 - n1) )) instructions/request ($a @ $n1, $b @ $n2)"
rm -rf $tmp
