"""OpenAI's official `openai` SDK, unchanged, against a running FastGate.

FASTGATE_URL and FASTGATE_KEY name the gateway and a gateway key; the model
`demo` is served by the built-in mock upstream (Chat Completions), so every
Responses API call goes Responses client -> translation -> upstream ->
translation -> Responses client, and the SDK's own parsers (the typed response
models, the stream event accumulator of `responses.stream`) judge the result.
Exits non-zero with the reason on the first mismatch.
"""

import os
import sys

import openai


def fail(msg: str) -> None:
    raise SystemExit(f"openai SDK check failed: {msg}")


def check_create(client: openai.OpenAI, checks: list) -> str:
    resp = client.responses.create(
        model="demo",
        instructions="Be terse.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
        max_output_tokens=64,
    )
    if resp.object != "response" or resp.status != "completed":
        fail(f"create: object {resp.object!r} status {resp.status!r}")
    text = resp.output_text
    if not text.strip():
        fail(f"create: empty output_text: {resp}")
    if resp.usage is None or not resp.usage.input_tokens or not resp.usage.output_tokens:
        fail(f"create: no usage: {resp.usage}")
    if resp.usage.total_tokens != resp.usage.input_tokens + resp.usage.output_tokens:
        fail(f"create: total_tokens {resp.usage}")
    checks.append(f"responses.create: {text!r} ({resp.usage.total_tokens} tokens)")
    return text


def check_raw_stream(client: openai.OpenAI, text: str, checks: list) -> None:
    types = []
    deltas = []
    seqs = []
    final = None
    for event in client.responses.create(model="demo", input="Say hello", stream=True):
        types.append(event.type)
        seqs.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    if types[:2] != ["response.created", "response.in_progress"]:
        fail(f"stream starts with {types[:2]}")
    if types[-1] != "response.completed" or final is None:
        fail(f"stream ends with {types[-1:]}")
    if seqs != list(range(len(seqs))):
        fail(f"sequence numbers {seqs}")
    if "".join(deltas) != text or final.output_text != text:
        fail(f"stream text {''.join(deltas)!r} / {final.output_text!r} != {text!r}")
    if final.usage is None or not final.usage.output_tokens:
        fail(f"stream: no usage in response.completed: {final.usage}")
    checks.append(f"responses.create(stream=True): {len(types)} events, text identical")


def check_stream_helper(client: openai.OpenAI, text: str, checks: list) -> None:
    streamed = []
    with client.responses.stream(model="demo", input="Say hello") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                streamed.append(event.delta)
        final = stream.get_final_response()
    if "".join(streamed) != text or final.output_text != text:
        fail(f"responses.stream text {''.join(streamed)!r} / {final.output_text!r}")
    checks.append("responses.stream: accumulated final response matches")


def check_tools(client: openai.OpenAI, checks: list) -> None:
    tools = [{
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    }]
    # A conversation that already holds the call and its output, as an agent sends it.
    resp = client.responses.create(
        model="demo",
        tools=tools,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
    )
    if resp.status != "completed" or not resp.output_text:
        fail(f"tool round trip: {resp}")
    checks.append("function_call + function_call_output input accepted")


def check_errors(client: openai.OpenAI, url: str, checks: list) -> None:
    try:
        client.responses.create(model="demo", input="x", previous_response_id="resp_123")
        fail("previous_response_id was accepted by a translated upstream")
    except openai.BadRequestError as e:
        if "previous_response_id" not in str(e):
            fail(f"previous_response_id: {e}")
    checks.append("previous_response_id: BadRequestError 400 naming the field")
    bad = openai.OpenAI(base_url=f"{url}/v1", api_key="fg_not_a_key", max_retries=0, timeout=10)
    try:
        bad.responses.create(model="demo", input="x")
        fail("a bad key was accepted")
    except openai.AuthenticationError:
        pass
    checks.append("bad key: AuthenticationError 401")


def main() -> int:
    url = os.environ["FASTGATE_URL"]
    key = os.environ["FASTGATE_KEY"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)
    checks = []
    text = check_create(client, checks)
    check_raw_stream(client, text, checks)
    check_stream_helper(client, text, checks)
    check_tools(client, checks)
    check_errors(client, url, checks)
    chat = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Say hello"}])
    if not chat.choices[0].message.content:
        fail(f"chat.completions: {chat}")
    checks.append("chat.completions.create answered")
    for line in checks:
        print(f"openai {openai.__version__} ok:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
