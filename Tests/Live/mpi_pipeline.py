#!/usr/bin/env python3
"""The MPI pipeline under Open MPI's real mpirun, 3 ranks on this machine.

  python3 mpi_pipeline.py GLM_RUN FIXTURES DEFAULT_MODEL

1. Identical output: for each golden model (2 layers: the ranks hold layer 0,
   layer 1 and the output layer), `mpirun -np 3 glm-run logits ... --json --mpi`
   prints byte for byte what one process prints; greedy generation on the
   default model (6 layers) prints the same text.
2. Pipelined decode: `pipeline run --mpi` runs its three phases and reports each
   against the simulator.
3. Faults, each a clear error and every rank gone within a few seconds: a model
   file missing on two ranks, different files on different ranks, more ranks
   than the model has layers (plus embedding and output), and a rank killed
   with SIGKILL while the pipeline works.

Every mpirun is bounded by a timeout; nothing listens beyond loopback (Open MPI's
shared-memory and loopback transports between processes of this machine).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

GLM_RUN, FIXTURES, DEFAULT_MODEL = sys.argv[1:4]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader,tcp", OMPI_MCA_btl_tcp_if_include="lo", OMPI_MCA_oob_tcp_if_include="lo")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]
failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


def stop_job(job):
    """Ends an mpirun and every rank it started: SIGTERM (mpirun passes it on), then SIGKILL."""
    if job.poll() is None:
        job.terminate()
        try:
            job.wait(timeout=10)
        except subprocess.TimeoutExpired:
            job.kill()
    for pid in ranks_alive():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(args, timeout=120):
    """Runs a command to its end, or stops it (and its ranks) after `timeout` seconds."""
    start = time.monotonic()
    job = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_job(job)
        out, err = job.communicate()
        err += f"\n(stopped after {timeout} s)"
    return subprocess.CompletedProcess(args, job.returncode, out, err), time.monotonic() - start


def ranks_alive():
    """{pid: rank} of the glm-run processes mpirun started (they carry OMPI_COMM_WORLD_RANK)."""
    alive = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.path.basename(os.readlink(f"/proc/{pid}/exe")) != "glm-run":
                continue
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"OMPI_COMM_WORLD_RANK="):
                alive[int(pid)] = int(entry.split(b"=")[1])
    return alive


tmp = tempfile.mkdtemp(prefix="glm-mpi-test-")

# 1. identical output on the golden models
for arch in ["glm-130b-tiny", "chatglm-6b-tiny", "glm4-tiny"]:
    model = os.path.join(tmp, arch + ".gguf")
    subprocess.run([GLM_RUN, "convert", os.path.join(FIXTURES, arch), "-o", model], check=True, capture_output=True)
    cases = json.load(open(os.path.join(FIXTURES, arch, "cases.json")))["cases"]
    for name in sorted(cases):
        if "input_ids" not in cases[name]:
            continue
        ids = ",".join(str(i) for i in cases[name]["input_ids"])
        one, _ = run([GLM_RUN, "logits", model, "--ids", ids, "--json"])
        three, _ = run(MPIRUN + ["-np", "3", GLM_RUN, "logits", model, "--ids", ids, "--json", "--mpi"])
        check(one.returncode == 0 and three.returncode == 0 and one.stdout == three.stdout and len(one.stdout) > 100,
              f"{arch} {name}: 3 ranks print the one-process logits byte for byte ({len(three.stdout)} bytes; rc {three.returncode}) {three.stderr[-300:]}")

prompt = ["-p", "The weather today", "--temp", "0", "--max-tokens", "24"]
one, _ = run([GLM_RUN, DEFAULT_MODEL] + prompt)
three, _ = run(MPIRUN + ["-np", "3", GLM_RUN, DEFAULT_MODEL] + prompt + ["--mpi"])
check(one.returncode == 0 and three.returncode == 0 and one.stdout == three.stdout and one.stdout.strip(),
      f"greedy generation on 3 ranks prints the one-process text: {three.stdout.strip()[:60]!r}")

# 2. pipelined decode against the simulator
p, _ = run(MPIRUN + ["-np", "3", GLM_RUN, "pipeline", "run", DEFAULT_MODEL, "--mpi", "--micro-batches", "3",
                     "--tokens", "16", "--decode-steps", "8", "--json"])
ok = p.returncode == 0
if ok:
    report = json.loads(p.stdout)
    phases = {ph["phase"]: ph for ph in report["phases"]}
    ok = report["ranks"] == 3 and set(phases) == {"prefill", "batched_decode", "single_sequence_decode"} and \
        all(ph["measured_s"] > 0 and ph["simulated_s"] > 0 and len(ph["stage_s"]) == 3 for ph in phases.values())
check(ok, f"pipeline run --mpi reports its three phases against the simulator (rc {p.returncode}) {p.stderr[-300:]}")

# 3. faults
golden = os.path.join(tmp, "glm-130b-tiny.gguf")
other = os.path.join(tmp, "chatglm-6b-tiny.gguf")
ids = ["--ids", "1,2,3"]
p, seconds = run(MPIRUN + ["-np", "1", GLM_RUN, "logits", golden] + ids + ["--mpi", ":", "-np", "2", GLM_RUN, "logits",
                                                                           os.path.join(tmp, "missing.gguf")] + ids + ["--mpi"], timeout=60)
check(p.returncode != 0 and "rank 1 cannot open its model file" in p.stderr and "missing.gguf: no such file" in p.stderr and seconds < 20,
      f"a model file missing on ranks 1 and 2 is a clear error ({seconds:.1f} s)")
p, seconds = run(MPIRUN + ["-np", "2", GLM_RUN, "logits", golden] + ids + ["--mpi", ":", "-np", "1", GLM_RUN, "logits", other] + ids + ["--mpi"], timeout=60)
check(p.returncode != 0 and "rank 2 opened a different model file than rank 0" in p.stderr and seconds < 20,
      f"different model files on different ranks are a clear error ({seconds:.1f} s)")
p, seconds = run(MPIRUN + ["-np", "5", GLM_RUN, "logits", golden] + ids + ["--mpi"], timeout=60)
check(p.returncode != 0 and "5 ranks but the model has only 2 layers" in p.stderr and seconds < 20,
      f"more ranks than the model's layers, embedding and output is a clear error ({seconds:.1f} s)")

# long enough to be killed in the middle (256 prompts of 128 tokens, then decoding; the model's context is 256)
job = subprocess.Popen(MPIRUN + ["-np", "3", GLM_RUN, "pipeline", "run", DEFAULT_MODEL, "--mpi", "--micro-batches", "256",
                                 "--tokens", "128", "--decode-steps", "60"],
                       env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
victim = None
deadline = time.monotonic() + 60
while victim is None and time.monotonic() < deadline and job.poll() is None:
    time.sleep(0.5)
    victim = next((pid for pid, rank in ranks_alive().items() if rank == 1), None)
time.sleep(1.5)  # at work by now
killed_at = time.monotonic()
try:
    if victim:
        os.kill(victim, signal.SIGKILL)
except ProcessLookupError:
    victim = None  # the job ended before it could be killed: reported below
try:
    _, err = job.communicate(timeout=30)
    gone = time.monotonic() - killed_at
except subprocess.TimeoutExpired:
    stop_job(job)
    _, err = job.communicate()
    gone = float("inf")
time.sleep(0.5)
alive = ranks_alive()
stop_job(job)  # nothing is left running, whatever the check below says
report = [line for line in err.splitlines() if "rank 1" in line]
check(victim is not None and job.returncode != 0 and gone < 10 and not alive and report,
      f"rank 1 killed while the pipeline works: every rank gone in {gone:.1f} s with mpirun's report: {report[:1]}")

for name in os.listdir(tmp):
    os.remove(os.path.join(tmp, name))
os.rmdir(tmp)
if failures:
    print(f"{len(failures)} MPI check(s) failed", file=sys.stderr)
    sys.exit(1)
print("all MPI checks passed")
