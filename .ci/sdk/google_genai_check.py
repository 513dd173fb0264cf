"""Google's official google-genai SDK, unchanged, against a running FastGate.

FASTGATE_URL and FASTGATE_KEY name the gateway and a gateway key; the model
`demo` is served by the built-in mock upstream (OpenAI-shaped), so every call
goes Gemini client -> translation -> upstream -> translation -> Gemini client.
Exits non-zero with the reason on the first mismatch.
"""

import os
import sys

from google import genai
from google.genai import types


def main() -> int:
    url = os.environ["FASTGATE_URL"]
    key = os.environ["FASTGATE_KEY"]
    checks = []
    for version in ("v1beta", "v1"):
        client = genai.Client(
            api_key=key,
            http_options=types.HttpOptions(base_url=url, api_version=version, timeout=10_000),
        )
        resp = client.models.generate_content(model="demo", contents="Say hello")
        text = resp.text or ""
        if not text.strip():
            raise SystemExit(f"{version}: empty answer: {resp}")
        if resp.usage_metadata is None or not resp.usage_metadata.prompt_token_count:
            raise SystemExit(f"{version}: no usage metadata: {resp}")
        reason = resp.candidates[0].finish_reason
        if reason is None or "STOP" not in str(reason):
            raise SystemExit(f"{version}: finish reason {reason!r}")
        streamed = "".join(
            chunk.text or "" for chunk in client.models.generate_content_stream(
                model="demo", contents="Say hello")
        )
        if streamed != text:
            raise SystemExit(f"{version}: stream {streamed!r} != whole answer {text!r}")
        count = client.models.count_tokens(model="demo", contents="Say hello")
        if not count.total_tokens:
            raise SystemExit(f"{version}: count_tokens gave {count}")
        checks.append(f"{version}: {text!r} ({resp.usage_metadata.total_token_count} tokens), "
                      f"stream identical, countTokens {count.total_tokens}")
    # embed_content calls batchEmbedContents, translated to the mock's /v1/embeddings.
    embedder = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, timeout=10_000))
    emb = embedder.models.embed_content(model="demo", contents=["first text", "second text"])
    if emb.embeddings is None or len(emb.embeddings) != 2:
        raise SystemExit(f"embed_content: {emb}")
    if not all(e.values for e in emb.embeddings):
        raise SystemExit(f"embed_content: empty vectors: {emb}")
    if emb.embeddings[0].values == emb.embeddings[1].values:
        raise SystemExit("embed_content: the two texts got the same vector")
    checks.append(f"embed_content: 2 vectors of {len(emb.embeddings[0].values)} floats")
    # Kept in a variable: the pager uses the client after `list()` returns.
    lister = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, timeout=10_000))
    names = [m.name for m in lister.models.list()]
    if not any(n.endswith("demo") for n in names):
        raise SystemExit(f"models.list has no demo: {names}")
    checks.append(f"models.list: {names}")
    bad = genai.Client(api_key="fg_not_a_key",
                       http_options=types.HttpOptions(base_url=url, timeout=10_000))
    try:
        bad.models.generate_content(model="demo", contents="x")
        raise SystemExit("a bad key was accepted")
    except genai.errors.ClientError as e:
        if e.code != 401:
            raise SystemExit(f"bad key: HTTP {e.code}, wanted 401") from e
    checks.append("bad key: the SDK raised ClientError 401")
    for line in checks:
        print("google-genai ok:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
