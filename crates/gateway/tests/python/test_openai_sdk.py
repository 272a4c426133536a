"""The official `openai` Python package against the gateway.

Starts `gateway-mock quickstart` (mock upstream + mock Aim + the gateway on
config.example.yaml) on a free port and checks a plain completion, a
streaming one, and a guardrail block surfacing as `BadRequestError` with the
detection message, on the OpenAI model and on the `anthropic/` one (whose
stream also carries `stream_options.include_usage`'s usage chunk). Exits
non-zero on any failure.

Run: python3 crates/gateway/tests/python/test_openai_sdk.py [path/to/gateway-mock]
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import openai

# The workspace root: crates/gateway/tests/python/ is four levels down.
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))


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


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "gateway-mock")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "quickstart", "--config", os.path.join(ROOT, "config.example.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    failures = []
    try:
        wait_ready(base, proc)
        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-anything", max_retries=0)

        def check(name, fn):
            try:
                fn()
                print(f"ok   {name}")
            except Exception as e:  # noqa: BLE001 - report every failure
                failures.append(name)
                print(f"FAIL {name}: {type(e).__name__}: {e}")

        def plain():
            r = client.chat.completions.create(
                model="gpt-3.5-turbo",
                messages=[{"role": "user", "content": "hi what is the weather"}],
                extra_body={"guardrails": ["aim-protected-app"]},
                extra_headers={"x-aim-user-email": "ishaan@berri.ai"},
            )
            assert r.choices[0].message.content == "hi what is the weather", r
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-3.5-turbo",
                messages=[{"role": "user", "content": "hello"}],
                extra_body={"guardrails": ["aim-protected-app"]},
            )
            assert raw.headers["x-litellm-applied-guardrails"] == "aim-protected-app", raw.headers

        def streaming():
            stream = client.chat.completions.create(
                model="gpt-3.5-turbo",
                messages=[{"role": "user", "content": "tell me about streaming responses"}],
                stream=True,
                extra_body={"guardrails": ["aim-protected-app"]},
            )
            text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
            assert text == "tell me about streaming responses", text

        def blocked():
            try:
                client.chat.completions.create(
                    model="gpt-3.5-turbo",
                    messages=[{"role": "user", "content": "hi my email is ishaan@berri.ai"}],
                    extra_body={"guardrails": ["aim-protected-app"]},
                )
            except openai.BadRequestError as e:
                assert e.status_code == 400
                assert e.body["message"] == '"ishaan@berri.ai" detected as email', e.body
                return
            raise AssertionError("the request was not blocked")

        def claude_plain():
            r = client.chat.completions.create(
                model="claude-sonnet",
                messages=[
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "hi what is the weather"},
                ],
                extra_body={"guardrails": ["aim-protected-app"]},
            )
            assert r.model == "claude-sonnet", r.model
            assert r.choices[0].message.role == "assistant", r
            assert r.choices[0].message.content == "hi what is the weather", r
            assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
            # The mock Anthropic counts words: 3 of the system prompt lifted
            # into `system`, 5 of the message; 5 answered.
            assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (8, 5, 13), r.usage

        def claude_streaming():
            prompt = "tell me about streaming responses"
            for guarded in (False, True):
                stream = client.chat.completions.create(
                    model="claude-sonnet",
                    messages=[{"role": "user", "content": prompt}],
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body={"guardrails": ["aim-protected-app"]} if guarded else None,
                )
                chunks = list(stream)
                text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
                assert text == prompt, (guarded, text)
                assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1, "not streamed"
                finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
                assert finish == ["stop"], (guarded, finish)
                assert all(c.model == "claude-sonnet" for c in chunks), chunks
                assert [c.usage is not None for c in chunks][-1:] == [True], (guarded, chunks[-1])
                assert all(c.usage is None for c in chunks[:-1]), (guarded, "usage before the last chunk")
                u = chunks[-1].usage
                assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (5, 5, 10), (guarded, u)

        def claude_blocked():
            try:
                client.chat.completions.create(
                    model="claude-sonnet",
                    messages=[
                        {"role": "system", "content": "Reply to ishaan@berri.ai."},
                        {"role": "user", "content": "hi"},
                    ],
                    extra_body={"guardrails": ["aim-protected-app"]},
                )
            except openai.BadRequestError as e:
                assert e.status_code == 400
                assert e.body["message"] == '"ishaan@berri.ai" detected as email', e.body
                return
            raise AssertionError("the request was not blocked")

        def unknown_model():
            try:
                client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
            except openai.BadRequestError as e:
                assert "Invalid model name passed in model=nope" in e.body["message"], e.body
                return
            raise AssertionError("an unknown model was accepted")

        def models():
            ids = [m.id for m in client.models.list()]
            assert ids == ["gpt-3.5-turbo", "claude-sonnet", "demo-canned"], ids

        check("plain completion", plain)
        check("streaming completion", streaming)
        check("guardrail block -> BadRequestError", blocked)
        check("anthropic/ model: plain completion", claude_plain)
        check("anthropic/ model: streaming completion, include_usage", claude_streaming)
        check("anthropic/ model: system e-mail -> BadRequestError", claude_blocked)
        check("unknown model -> BadRequestError", unknown_model)
        check("models.list", models)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if failures:
            sys.stderr.write(err.decode(errors="replace")[-4000:])
    if failures:
        print(f"{len(failures)} failed: {json.dumps(failures)}")
        sys.exit(1)
    print("python openai client: all passed")


if __name__ == "__main__":
    main()
