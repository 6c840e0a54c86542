"""The server's numbers in Prometheus' text format (GET /metrics): requests by endpoint and
status, a latency histogram, batch sizes, the queue's length, tokens generated."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    def __init__(self, buckets):
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{bound}"}} {n}' for bound, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        label = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{label} {self.sum:.6f}", f"{name}_count{label} {self.count}"]


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batches = Histogram(BATCH)
        self.tokens = 0
        self.queue = 0
        self.decoders = lambda: (0, 0)  # (running now, restarts so far): the batcher's

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[endpoint, status] += 1
            self.latency.setdefault(endpoint, Histogram(LATENCY)).observe(seconds)

    def batch(self, inputs: int) -> None:
        with self.lock:
            self.batches.observe(inputs)

    def generated(self, tokens: int) -> None:
        with self.lock:
            self.tokens += tokens

    def text(self) -> str:
        alive, restarts = self.decoders()
        with self.lock:
            lines = ["# HELP seqcli_requests_total Requests answered, by endpoint and HTTP status.",
                     "# TYPE seqcli_requests_total counter"]
            lines += [f'seqcli_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP seqcli_request_seconds Time from a request's arrival to its answer.",
                      "# TYPE seqcli_request_seconds histogram"]
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines("seqcli_request_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP seqcli_batch_inputs Inputs decoded together in one batch.",
                      "# TYPE seqcli_batch_inputs histogram", *self.batches.lines("seqcli_batch_inputs"),
                      "# HELP seqcli_queue_length Requests waiting to be decoded.", "# TYPE seqcli_queue_length gauge",
                      f"seqcli_queue_length {self.queue}",
                      "# HELP seqcli_decoders Decoder threads running now.", "# TYPE seqcli_decoders gauge",
                      f"seqcli_decoders {alive}",
                      "# HELP seqcli_decoder_restarts_total Decoders started again after an error escaped them.",
                      "# TYPE seqcli_decoder_restarts_total counter", f"seqcli_decoder_restarts_total {restarts}",
                      "# HELP seqcli_tokens_generated_total Tokens drawn by language models.",
                      "# TYPE seqcli_tokens_generated_total counter", f"seqcli_tokens_generated_total {self.tokens}"]
        return "\n".join(lines) + "\n"
