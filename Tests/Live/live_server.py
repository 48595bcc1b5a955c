"""Live test of `glm-run serve`: a real server on a free loopback port, driven
by curl and by the official `openai` Python client (streaming and not), then a
bounded load of 32 requests, 8 at a time. The server is stopped with SIGTERM
and must exit 0. Prints one line per check and 'N passed, N failed'.

    python3 Tests/Live/live_server.py .build/debug/glm-run models/glm-small-bilingual-q4.gguf
"""
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai

BINARY, MODEL = sys.argv[1], sys.argv[2]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
base = f"http://127.0.0.1:{port}"
log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"glm-serve-{port}.log"), "w")
server = subprocess.Popen([BINARY, "serve", MODEL, "--host", "127.0.0.1", "--port", str(port), "--queue", "64"],
                          stdout=log, stderr=subprocess.STDOUT)
try:
    # ready within 60 s: /health answers 503 while loading, then 200
    deadline, status = time.time() + 60, None
    while time.time() < deadline and server.poll() is None:
        try:
            status = urllib.request.urlopen(base + "/health", timeout=2).status
            if status == 200:
                break
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            pass
        time.sleep(0.2)
    check("server became healthy", status == 200, f"last status {status}")

    def curl(*args):
        return subprocess.run(["curl", "-s", "--max-time", "30", *args], capture_output=True, text=True).stdout

    body = json.dumps({"messages": [{"role": "user", "content": "The meaning of life"}], "max_tokens": 8, "temperature": 0})
    out = curl(base + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d", body)
    try:
        reply = json.loads(out)
        check("curl: chat completion", reply["choices"][0]["message"]["role"] == "assistant" and reply["usage"]["total_tokens"] > 0)
    except (ValueError, KeyError) as e:
        check("curl: chat completion", False, f"{e}: {out[:200]}")
    out = curl("-N", base + "/v1/chat/completions", "-H", "Content-Type: application/json",
               "-d", json.dumps({**json.loads(body), "stream": True}))
    check("curl: streamed chat ends with [DONE]", out.startswith("data: {") and out.endswith("data: [DONE]\n\n"), out[-200:])
    out = curl(base + "/v1/nothing")
    check("curl: unknown route is OpenAI error JSON", "error" in json.loads(out or "{}"), out)

    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=60)
    models = client.models.list()
    check("openai: models.list", len(models.data) == 1 and models.data[0].id == "glm-small-bilingual-q4")
    reply = client.chat.completions.create(model="glm", messages=[{"role": "user", "content": "床前明月光，"}], max_tokens=12, temperature=0)
    plain = reply.choices[0].message.content
    check("openai: chat.completions", isinstance(plain, str) and reply.usage.completion_tokens > 0, str(reply))
    stream = client.chat.completions.create(model="glm", messages=[{"role": "user", "content": "床前明月光，"}], max_tokens=12,
                                            temperature=0, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    check("openai: streamed chat equals the unstreamed answer", "".join(pieces) == plain, f"{''.join(pieces)!r} vs {plain!r}")
    completion = client.completions.create(model="glm", prompt="The meaning of life", max_tokens=8, temperature=0)
    check("openai: completions", isinstance(completion.choices[0].text, str))
    try:
        client.chat.completions.create(model="glm", messages=[{"role": "user", "content": "hi"}], n=2)
        check("openai: n=2 refused", False, "accepted")
    except openai.BadRequestError as e:
        check("openai: n=2 refused with 400", e.status_code == 400)

    # load: 32 requests, 8 at a time, every one answered; four of them are one greedy
    # request, whose answer must equal the one it got alone (batching changes no bit)
    greedy = dict(model="glm", messages=[{"role": "user", "content": "Tell me about rivers"}], max_tokens=12, temperature=0)
    alone = client.chat.completions.create(**greedy).choices[0].message.content
    first_token = []

    def one(i):
        if i % 8 == 3:
            return client.chat.completions.create(**greedy).choices[0].message.content == alone
        sent = time.time()
        r = client.chat.completions.create(model="glm", messages=[{"role": "user", "content": f"Question {i}"}], max_tokens=8,
                                           temperature=0.7, seed=i, stream=(i % 2 == 0))
        if i % 2 == 0:
            # a streamed answer counts when its last chunk says why it ended
            reasons, seen = [], False
            for c in r:
                if c.choices and c.choices[0].delta.content and not seen:
                    first_token.append(time.time() - sent)
                    seen = True
                if c.choices:
                    reasons.append(c.choices[0].finish_reason)
            return bool(reasons) and reasons[-1] in ("stop", "length")
        return r.choices[0].finish_reason in ("stop", "length")

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda i: (lambda: one(i))(), range(32)))
    first_token.sort()
    ttft = f"time to first token p50 {first_token[len(first_token) // 2] * 1000:.0f} ms, max {first_token[-1] * 1000:.0f} ms" if first_token else "no streamed tokens"
    check(f"load: 32 requests, 8 at a time, all answered ({time.time() - start:.1f} s; {ttft})", all(outcomes), str(outcomes))
    metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    check("metrics count the load", 'route="/v1/chat/completions",status="200"' in metrics)
    # continuous batching: some decode steps ran more than one sequence
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines() if line.startswith("glm_decode_batch_size")}
    steps, single = values.get("glm_decode_batch_size_count", 0), values.get('glm_decode_batch_size_bucket{le="1.0"}', 0)
    check(f"decode steps batched sequences ({steps - single:.0f} of {steps:.0f} steps ran 2 or more)", steps > single, str(values))
finally:
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        code = "killed"
    log.close()
check("SIGTERM stops the server with exit 0", code == 0, f"exit {code}")
failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
