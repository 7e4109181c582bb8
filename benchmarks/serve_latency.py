"""Request latency of `mode=serve`, as a client sees it, with the MLP and with AlexNet.

    python benchmarks/serve_latency.py [--mlp RUN_OR_FILE] [--alexnet RUN_OR_FILE] [--requests 100] [--write]

For each model the server starts through the command line (`python -m alexnet_mnist mode=serve`) on
a free port of 127.0.0.1, and `gradio_client` sends it docs/pictures/photo_digit.jpg on the page's
`/photo` endpoint: upload, queue, preparation, model, the 28x28 preview written and downloaded. A
request's latency is the wall time of `Client.predict`. After 5 warm-up requests, one client sends
`--requests` requests one after the other, then 4 clients (threads, each its own `Client`) send
`--requests` / 4 each at once; a request that raises counts as failed. Then, with the server
stopped, the page's own work on the same photo (open, prepare, model, preview file) is timed in
this process, so that the rest of a request's latency is Gradio's and its client's. Without `--mlp`/`--alexnet` a
model is untrained (latency does not depend on the weights). Budgets on 2 cores: median at most
30 ms (MLP) and 100 ms (AlexNet) from one client; no failed request from 4. `--write` writes its
section of benchmarks/RESULTS.md.
"""

import argparse
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_file import write_section  # noqa: E402
from train_throughput import cpu_model  # noqa: E402

from alexnet_mnist.inference.classes import trained_on  # noqa: E402
from alexnet_mnist.inference.prediction import Classifier  # noqa: E402
from alexnet_mnist.inference.serving import Answers  # noqa: E402
from alexnet_mnist.models import build_model  # noqa: E402

PHOTO = Path(__file__).parents[1] / "docs" / "pictures" / "photo_digit.jpg"
WARMUP = 5
CLIENTS = 4
BUDGET_MS = {"mlp": 30, "alexnet": 100}


def start_server(checkpoint, cwd):
    """The server's process and URL, once it says it is serving."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "alexnet_mnist", "mode=serve", f"checkpoint={checkpoint}", f"serve.port={port}",
         f"hydra.run.dir={cwd}/serve"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stdout, selectors.EVENT_READ)
        while process.poll() is None and waiting.select(300):
            line = process.stdout.readline()
            found = re.search(r" at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                return process, found.group(1)
    process.kill()
    raise SystemExit(f"the server for {checkpoint} did not start: {process.stdout.read()}")


def timed_requests(url, count, latencies, failures):
    from gradio_client import Client, handle_file

    # The page is plain HTTP on 127.0.0.1. gradio_client opens a new httpx client for each of a
    # request's four calls, and with ssl_verify each loads the CA bundle: about 75 ms a call here,
    # spent on a certificate store that plain HTTP never reads.
    client = Client(url, verbose=False, ssl_verify=False)
    for _ in range(count):
        start = time.perf_counter()
        try:
            client.predict(handle_file(str(PHOTO)), api_name="/photo")
        except Exception as error:  # any failure of a request is what is counted
            failures.append(f"{type(error).__name__}: {error}")
            continue
        latencies.append(1000 * (time.perf_counter() - start))


def measure(url, requests):
    timed_requests(url, WARMUP, [], [])
    one, one_failed = [], []
    timed_requests(url, requests, one, one_failed)
    many, many_failed = [], []
    threads = [threading.Thread(target=timed_requests, args=(url, requests // CLIENTS, many, many_failed)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"1": (one, one_failed), str(CLIENTS): (many, many_failed)}


def handler_ms(checkpoint, count):
    """Median milliseconds of the page's answer to the photo (`Answers.photo`: open, prepare, model,
    preview), without Gradio."""
    with tempfile.TemporaryDirectory() as previews:
        answers = Answers(Classifier(checkpoint), trained_on(checkpoint, "mnist"), Path(previews))
        times = []
        for _ in range(WARMUP + count):
            start = time.perf_counter()
            *_, status = answers.photo({"path": str(PHOTO)})
            times.append(1000 * (time.perf_counter() - start))
    if status:
        raise SystemExit(f"the page refused {PHOTO}: {status}")
    return statistics.median(times[WARMUP:])


def p95(values):
    return statistics.quantiles(values, n=20)[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlp", help="a trained MLP (run directory, .keras or .tflite); default: untrained")
    parser.add_argument("--alexnet", help="a trained AlexNet; default: untrained")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows, verdicts, loads = [], [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("mlp", "alexnet"):
            checkpoint, which = getattr(args, name), "trained"
            if checkpoint is None:
                checkpoint, which = Path(scratch) / f"{name}.keras", "untrained"
                build_model(name).save(checkpoint)
            process, url = start_server(checkpoint, scratch)
            try:
                results = measure(url, args.requests)
                loads.append(os.getloadavg()[0])
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.communicate(timeout=60)
                except subprocess.TimeoutExpired:  # SIGINT ignored (a background job's inheritance)
                    process.kill()
                    process.communicate()
            own = handler_ms(checkpoint, args.requests)
            for clients, (latencies, failures) in results.items():
                failed = len(failures)
                for failure in sorted(set(failures)):
                    print(f"{name}, {clients} clients: {failures.count(failure)} x {failure}", file=sys.stderr)
                median = statistics.median(latencies)
                rows.append(f"| {name} ({which}) | {clients} | {len(latencies) + failed} | {median:.1f} | {p95(latencies):.1f} | {failed} |")
                print(rows[-1], flush=True)
                if clients == "1":
                    verdicts.append(f"{name} median {median:.1f} ms from 1 client (budget {BUDGET_MS[name]} ms): "
                                    f"{'within' if median <= BUDGET_MS[name] else 'OVER'}; the page's own work "
                                    f"{own:.1f} ms of it (open, prepare, model, preview), Gradio and its client "
                                    f"{median - own:.1f} ms")
                else:
                    verdicts.append(f"{name}: {failed} failed of {len(latencies) + failed} from {clients} clients at once")
    section = "\n".join([
        "# Serving latency",
        "",
        f"CPU: {cpu_model()}, 2 cores. `python -m alexnet_mnist mode=serve` on 127.0.0.1, requests from `gradio_client` on "
        f"the same machine: docs/pictures/photo_digit.jpg ({PHOTO.stat().st_size // 1000} kB) on the page's `/photo` "
        "endpoint (upload, queue, preparation, model, preview written and downloaded); "
        f"{WARMUP} warm-up requests first. The page's own work on the photo (open, prepare, model, preview file) is "
        "timed in the benchmark's process once the server has stopped. Load average (1 minute) at the start and after each model: "
        f"{', '.join(f'{load:.1f}' for load in loads)}; above 2, other jobs were sharing the 2 cores. "
        "Written by `benchmarks/serve_latency.py`.",
        "",
        "| model | clients at once | requests | median (ms) | p95 (ms) | failed |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *[f"- {verdict}" for verdict in verdicts],
    ])
    print(section)
    if args.write:
        write_section(section)


if __name__ == "__main__":
    main()
