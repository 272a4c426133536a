"""The official `anthropic` Python package against the gateway's /v1/messages.

Starts `gateway-mock quickstart` on a config of its own (a master key, an
`anthropic/` model served by the mock upstream's Messages API, an OpenAI
model the gateway translates to, an Aim guardrail with pre_call and
post_call) and checks, with the SDK a Claude client uses:
`messages.create` and `messages.stream` on both models, a tool_use round
trip, `messages.count_tokens`, the SDK's `x-api-key` (and Bearer) auth, and
guardrail blocks: an e-mail address planted in the `system` prompt or a
tool_result is `BadRequestError` with Aim's detection message before any
model is called; an answer Aim refuses is `BadRequestError` (JSON) or an
`error` event the SDK raises mid-stream. It asserts what went over the
wire through the mocks' control API. Exits non-zero on any failure.

Run: python3 crates/gateway/tests/python/test_anthropic_sdk.py [path/to/gateway-mock]
"""

import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import anthropic

# The workspace root: crates/gateway/tests/python/ is four levels down.
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))

MASTER_KEY = "sk-gateway-sdk-test-master"
# What the quickstart gives its providers (crates/gateway-mock/src/main.rs).
UPSTREAM_ANTHROPIC_KEY = "sk-ant-mock"
UPSTREAM_OPENAI_KEY = "sk-mock-openai"
# The mock Aim blocks a streamed chunk containing this (a single character,
# so it never straddles two chunks).
STREAM_MARKER = "~"
DETECTED = '"ishaan@berri.ai" detected as email'

CONFIG = f"""
model_list:
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
guardrails:
  - guardrail_name: aim-protected-app
    litellm_params:
      guardrail: aim
      mode: [pre_call, post_call]
general_settings:
  master_key: {MASTER_KEY}
"""

GUARDED = {"guardrails": ["aim-protected-app"]}
PASSTHROUGH = "claude-sonnet"
TRANSLATED = "gpt-3.5-turbo"
MODELS = (PASSTHROUGH, TRANSLATED)

TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"quickstart exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/health/readiness", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not become ready")


def mock_urls(proc, seconds=30):
    """The mocks' URLs, from the quickstart's `mock <name> listening on <url>`
    lines. A thread reads stdout to its end, so the pipe never fills."""
    lines = queue.Queue()

    def pump():
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace").strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    urls = {}
    deadline = time.time() + seconds
    while len(urls) < 2:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            raise SystemExit("the quickstart did not print its mocks' URLs") from None
        if line is None:
            raise SystemExit(f"quickstart exited early with {proc.wait()}")
        words = line.split()
        if len(words) == 5 and words[0] == "mock" and words[2:4] == ["listening", "on"]:
            urls[words[1]] = words[4]
    # The upstream prints its OpenAI base (`.../v1`); the control API is at its root.
    return urls["upstream"].removesuffix("/v1"), urls["aim"]


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Mocks:
    """The mocks' control API: what they answer, what they received."""

    def __init__(self, upstream, aim):
        self.upstream = upstream
        self.aim = aim

    def requests(self, model):
        path = "/__mock/anthropic/requests" if model == PASSTHROUGH else "/__mock/requests"
        return http(self.upstream + path)

    def answer(self, model, options):
        """How the upstream behind `model` answers from now on ({}: by default)."""
        path = "/__mock/anthropic/options" if model == PASSTHROUGH else "/__mock/options"
        http(self.upstream + path, options)


def header(recorded, name):
    values = [v for k, v in recorded["headers"] if k.lower() == name]
    return values[0] if len(values) == 1 else values


def assert_no_client_key(recorded):
    """The client's key is the gateway's; it never goes upstream."""
    for k, v in recorded["headers"]:
        assert MASTER_KEY not in v, f"the client's key went upstream in {k}"
    assert MASTER_KEY not in recorded["body"], "the client's key went upstream in the body"


def assert_blocked(e, message=DETECTED):
    assert e.status_code == 400, e.status_code
    assert e.body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}, e.body


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "gateway-mock")
    # The SDK reads these when an argument is absent; the developer's own
    # must not decide what this test sends.
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        os.environ.pop(name, None)
    tmp = tempfile.TemporaryDirectory()
    config = os.path.join(tmp.name, "config.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    log = open(os.path.join(tmp.name, "gateway.log"), "w+b")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "quickstart", "--config", config, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    failures = []
    finished = False
    try:
        mocks = Mocks(*mock_urls(proc))
        wait_ready(base, proc)
        http(mocks.aim + "/__mock/options", {"stream_block_marker": STREAM_MARKER})
        client = anthropic.Anthropic(base_url=base, api_key=MASTER_KEY, max_retries=0, timeout=30)

        def check(name, fn):
            try:
                fn()
                print(f"ok   {name}")
            except Exception as e:  # noqa: BLE001 - report every failure
                failures.append(name)
                print(f"FAIL {name}: {type(e).__name__}: {e}")
            finally:
                for model in MODELS:
                    mocks.answer(model, {})

        def auth():
            try:
                anthropic.Anthropic(base_url=base, api_key="sk-wrong", max_retries=0).messages.create(
                    model=PASSTHROUGH, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
                )
                raise AssertionError("a wrong x-api-key was accepted")
            except anthropic.AuthenticationError as e:
                assert e.status_code == 401
                assert e.body["type"] == "error" and e.body["error"]["type"] == "authentication_error", e.body
            # Claude Code with ANTHROPIC_AUTH_TOKEN sends a Bearer token instead.
            bearer = anthropic.Anthropic(base_url=base, auth_token=MASTER_KEY, max_retries=0)
            r = bearer.messages.create(model=PASSTHROUGH, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
            assert r.content[0].text == "hi", r

        def plain(model):
            def run():
                before = len(mocks.requests(model))
                r = client.messages.create(
                    model=model,
                    max_tokens=256,
                    system="You are terse.",
                    messages=[{"role": "user", "content": "hi what is the weather"}],
                    extra_body=GUARDED,
                )
                assert r.type == "message" and r.role == "assistant", r
                assert r.model == model, r.model
                assert [b.type for b in r.content] == ["text"], r.content
                assert r.content[0].text == "hi what is the weather", r.content
                assert r.stop_reason == "end_turn", r.stop_reason
                assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
                sent = mocks.requests(model)
                assert len(sent) == before + 1, "one upstream call"
                sent = sent[-1]
                body = json.loads(sent["body"])
                assert_no_client_key(sent)
                assert "guardrails" not in body, body
                if model == PASSTHROUGH:
                    assert sent["path"] == "/v1/messages", sent["path"]
                    assert header(sent, "x-api-key") == UPSTREAM_ANTHROPIC_KEY, sent["headers"]
                    assert body["model"] == "claude-sonnet-4-5-20250929", body
                    assert body["system"] == "You are terse." and body["max_tokens"] == 256, body
                else:
                    assert sent["path"] == "/v1/chat/completions", sent["path"]
                    assert header(sent, "authorization") == f"Bearer {UPSTREAM_OPENAI_KEY}", sent["headers"]
                    assert body["model"] == "gpt-3.5-turbo", body
                    assert body["messages"][0] == {"role": "system", "content": "You are terse."}, body

            return run

        def streaming(model, guarded):
            def run():
                prompt = "tell me about streaming responses"
                with client.messages.stream(
                    model=model,
                    max_tokens=256,
                    messages=[{"role": "user", "content": prompt}],
                    extra_body=GUARDED if guarded else None,
                ) as stream:
                    pieces = list(stream.text_stream)
                    final = stream.get_final_message()
                assert len(pieces) > 1, f"one piece: the answer was not streamed: {pieces}"
                assert "".join(pieces) == prompt, pieces
                assert final.model == model, final.model
                assert [b.type for b in final.content] == ["text"], final.content
                assert final.content[0].text == prompt, final.content
                assert final.stop_reason == "end_turn", final.stop_reason
                assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0, final.usage
                body = json.loads(mocks.requests(model)[-1]["body"])
                assert body["stream"] is True, body

            return run

        def tool_round_trip_passthrough():
            mocks.answer(
                PASSTHROUGH,
                {"reply": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
            )
            ask = [{"role": "user", "content": "what is the weather in Paris?"}]
            r = client.messages.create(model=PASSTHROUGH, max_tokens=256, tools=TOOLS, messages=ask, extra_body=GUARDED)
            assert [b.type for b in r.content] == ["text", "tool_use"], r.content
            assert r.stop_reason == "tool_use", r.stop_reason
            call = r.content[1]
            assert call.name == "get_weather" and call.input == {"city": "Paris"}, call
            # The same answer streamed: the SDK rebuilds the input from input_json_delta.
            with client.messages.stream(model=PASSTHROUGH, max_tokens=256, tools=TOOLS, messages=ask) as stream:
                streamed = stream.get_final_message()
            assert [b.type for b in streamed.content] == ["text", "tool_use"], streamed.content
            assert streamed.content[1].input == {"city": "Paris"}, streamed.content
            assert streamed.stop_reason == "tool_use", streamed.stop_reason

            mocks.answer(PASSTHROUGH, {"reply": "It is 22C and sunny in Paris."})
            result = {"type": "tool_result", "tool_use_id": call.id, "content": "22C and sunny"}
            turn = ask + [
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
                {"role": "user", "content": [result]},
            ]
            r2 = client.messages.create(
                model=PASSTHROUGH, max_tokens=256, tools=TOOLS, messages=turn, extra_body=GUARDED
            )
            assert r2.content[0].text == "It is 22C and sunny in Paris.", r2.content
            body = json.loads(mocks.requests(PASSTHROUGH)[-1]["body"])
            assert body["messages"][1]["content"][1] == {
                "id": call.id,
                "input": {"city": "Paris"},
                "name": "get_weather",
                "type": "tool_use",
            }, body
            assert body["messages"][2]["content"] == [result], body

        def tool_round_trip_translated():
            completion = {
                "id": "chatcmpl-tool",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-3.5-turbo",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_weather_1",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
            }
            mocks.answer(TRANSLATED, {"completion": json.dumps(completion)})
            ask = [{"role": "user", "content": "what is the weather in Paris?"}]
            r = client.messages.create(model=TRANSLATED, max_tokens=256, tools=TOOLS, messages=ask, extra_body=GUARDED)
            assert [b.type for b in r.content] == ["tool_use"], r.content
            assert r.stop_reason == "tool_use", r.stop_reason
            call = r.content[0]
            assert (call.id, call.name, call.input) == ("call_weather_1", "get_weather", {"city": "Paris"}), call
            sent = json.loads(mocks.requests(TRANSLATED)[-1]["body"])
            assert sent["tools"][0]["function"]["name"] == "get_weather", sent

            # The mock echoes the last message: the tool result, as the model would read it.
            mocks.answer(TRANSLATED, {})
            turn = ask + [
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C and sunny"}],
                },
            ]
            r2 = client.messages.create(
                model=TRANSLATED, max_tokens=256, tools=TOOLS, messages=turn, extra_body=GUARDED
            )
            assert r2.content[0].text == "22C and sunny", r2.content
            sent = json.loads(mocks.requests(TRANSLATED)[-1]["body"])
            assistant, tool = sent["messages"][-2:]
            assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_weather_1", sent
            assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}, sent
            assert tool == {"role": "tool", "tool_call_id": "call_weather_1", "content": "22C and sunny"}, sent

        def blocked_pre_call(model, stream):
            def run():
                before = len(mocks.requests(model))
                # The system prompt as a string for JSON, as text blocks for the stream.
                system = "Reply to ishaan@berri.ai."
                if stream:
                    system = [{"type": "text", "text": "Be kind."}, {"type": "text", "text": system}]
                kwargs = dict(
                    model=model,
                    max_tokens=64,
                    system=system,
                    messages=[{"role": "user", "content": "hi"}],
                    extra_body=GUARDED,
                )
                try:
                    if stream:
                        with client.messages.stream(**kwargs) as s:
                            s.get_final_message()
                    else:
                        client.messages.create(**kwargs)
                    raise AssertionError("the request was not blocked")
                except anthropic.BadRequestError as e:
                    assert_blocked(e)
                assert len(mocks.requests(model)) == before, "a blocked request reached the model"

            return run

        def thinking_round_trip(guarded):
            def run():
                # Claude Code's turn with extended thinking and a tool: the
                # thinking block must come back with Anthropic's signature,
                # or Anthropic refuses the next turn that carries it.
                weather = {"name": "get_weather", "input": {"city": "Paris"}}
                mocks.answer(PASSTHROUGH, {"thinking": "The user wants the weather.", "tool_use": weather})
                ask = [{"role": "user", "content": "what is the weather in Paris?"}]
                with client.messages.stream(
                    model=PASSTHROUGH,
                    max_tokens=2048,
                    thinking={"type": "enabled", "budget_tokens": 1024},
                    tools=TOOLS,
                    messages=ask,
                    extra_body=GUARDED if guarded else None,
                ) as stream:
                    final = stream.get_final_message()
                assert [b.type for b in final.content] == ["thinking", "text", "tool_use"], final.content
                thinking = final.content[0]
                assert thinking.thinking == "The user wants the weather.", thinking
                assert thinking.signature == "mock-signature", thinking
                mocks.answer(PASSTHROUGH, {"reply": "It is sunny."})
                call = final.content[2]
                turn = ask + [
                    {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
                ]
                r = client.messages.create(
                    model=PASSTHROUGH,
                    max_tokens=2048,
                    thinking={"type": "enabled", "budget_tokens": 1024},
                    tools=TOOLS,
                    messages=turn,
                    extra_body=GUARDED if guarded else None,
                )
                assert r.content[-1].text == "It is sunny.", r.content
                sent = json.loads(mocks.requests(PASSTHROUGH)[-1]["body"])
                assert sent["messages"][1]["content"][0]["signature"] == "mock-signature", sent["messages"][1]

            return run

        def blocked_tool_result():
            before = len(mocks.requests(PASSTHROUGH))
            turn = [
                {"role": "user", "content": "who should I write to?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "write to ishaan@berri.ai"}
                    ],
                },
            ]
            try:
                client.messages.create(model=PASSTHROUGH, max_tokens=64, tools=TOOLS, messages=turn, extra_body=GUARDED)
                raise AssertionError("the request was not blocked")
            except anthropic.BadRequestError as e:
                assert_blocked(e)
            assert len(mocks.requests(PASSTHROUGH)) == before, "a blocked request reached the model"

        def blocked_post_call(model):
            def run():
                before = len(mocks.requests(model))
                mocks.answer(model, {"reply": "write to ishaan@berri.ai"})
                try:
                    client.messages.create(
                        model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}], extra_body=GUARDED
                    )
                    raise AssertionError("the answer was not blocked")
                except anthropic.BadRequestError as e:
                    assert_blocked(e)
                assert len(mocks.requests(model)) == before + 1, "the model was called once"

            return run

        def blocked_stream(model):
            def run():
                prompt = f"please say {STREAM_MARKER} for me now"
                received = []
                try:
                    with client.messages.stream(
                        model=model, max_tokens=64, messages=[{"role": "user", "content": prompt}], extra_body=GUARDED
                    ) as stream:
                        for piece in stream.text_stream:
                            received.append(piece)
                    raise AssertionError(f"the stream was not blocked: {received}")
                except anthropic.APIStatusError as e:
                    # The stream had started (200): the SDK raises the `error` event.
                    assert e.status_code == 200, e.status_code
                    event = {
                        "type": "error",
                        "error": {"type": "invalid_request_error", "message": f'Stream blocked: found "{STREAM_MARKER}"'},
                    }
                    assert e.body == event, e.body
                text = "".join(received)
                assert STREAM_MARKER not in text and prompt.startswith(text), received

            return run

        def count_tokens(model):
            def run():
                before = len(mocks.requests(model))
                r = client.messages.count_tokens(
                    model=model, system="You are terse.", messages=[{"role": "user", "content": "how many tokens here"}]
                )
                assert r.input_tokens > 0, r
                sent = mocks.requests(model)
                if model == PASSTHROUGH:
                    # The mock counts words: 3 in the system prompt, 4 in the message.
                    assert r.input_tokens == 7, r
                    last = sent[-1]
                    assert last["path"] == "/v1/messages/count_tokens", last["path"]
                    assert json.loads(last["body"])["model"] == "claude-sonnet-4-5-20250929", last["body"]
                    assert header(last, "x-api-key") == UPSTREAM_ANTHROPIC_KEY, last["headers"]
                    assert_no_client_key(last)
                else:
                    # Estimated by the gateway: nothing goes upstream.
                    assert len(sent) == before, "count_tokens called the OpenAI upstream"

            return run

        check("auth: wrong x-api-key -> AuthenticationError; Bearer auth_token", auth)
        for model in MODELS:
            kind = "passthrough" if model == PASSTHROUGH else "translated"
            check(f"{kind}: messages.create", plain(model))
            check(f"{kind}: messages.stream", streaming(model, guarded=False))
            check(f"{kind}: messages.stream, post_call guardrail", streaming(model, guarded=True))
            check(f"{kind}: count_tokens", count_tokens(model))
            check(f"{kind}: system e-mail -> BadRequestError (create)", blocked_pre_call(model, stream=False))
            check(f"{kind}: system e-mail -> BadRequestError (stream)", blocked_pre_call(model, stream=True))
            check(f"{kind}: answer e-mail -> BadRequestError (post_call)", blocked_post_call(model))
            check(f"{kind}: stream blocked mid-way -> error event", blocked_stream(model))
        check("passthrough: tool_use round trip (create and stream)", tool_round_trip_passthrough)
        check("translated: tool_use round trip", tool_round_trip_translated)
        check("passthrough: tool_result e-mail -> BadRequestError", blocked_tool_result)
        check("passthrough: thinking signature kept (stream, tool turn)", thinking_round_trip(guarded=False))
        check(
            "passthrough: thinking signature kept (stream with post_call, tool turn)",
            thinking_round_trip(guarded=True),
        )
        finished = True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if failures or not finished:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        log.close()
        tmp.cleanup()
    if failures:
        print(f"{len(failures)} failed: {json.dumps(failures)}")
        sys.exit(1)
    print(f"python anthropic {anthropic.__version__} client: all passed")


if __name__ == "__main__":
    main()
