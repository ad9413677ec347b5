"""Counters, gauges and histograms rendered in the Prometheus text exposition format (no client library)."""
from __future__ import annotations

import math
import threading
from typing import Callable, Sequence

LabelValues = tuple[str, ...]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A monotonically increasing count per label combination."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """A value read when the metrics are scraped."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        super().__init__(name, help_text)
        self.read = read

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_number(self.read())}"]


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, list[float]] = {}  # bucket counts..., +Inf count, sum

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self._series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += 1
            series[-1] += value

    def count(self, *labels: str) -> int:
        """Observations made for these label values."""
        return int(self._series.get(labels, [0.0, 0.0])[-2])

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        lines = self.header()
        for key, series in items:
            for bound, n in zip((*self.buckets, math.inf), series[:-1]):
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(n)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(series[-2])}")
        return lines


class ServeMetrics:
    """Everything ``GET /metrics`` reports for one server process."""

    def __init__(self, queue_depth: Callable[[], float] = lambda: 0.0) -> None:
        self._inflight = 0
        self._lock = threading.Lock()
        self.requests = Counter("liteseg_requests_total", "HTTP requests by endpoint, method and status code.",
                                ("endpoint", "method", "status"))
        self.latency = Histogram("liteseg_request_duration_seconds", "HTTP request latency in seconds.",
                                 LATENCY_BUCKETS, ("endpoint",))
        self.errors = Counter("liteseg_errors_total", "Requests answered with an error, by error code.", ("code",))
        self.batch_size = Histogram("liteseg_batch_size", "Images per model forward pass.", BATCH_BUCKETS)
        self.inference = Histogram("liteseg_inference_seconds", "Model forward time per batch in seconds.",
                                   LATENCY_BUCKETS)
        self.queue = Gauge("liteseg_queue_depth", "Images waiting for or in inference.", queue_depth)
        self.inflight = Gauge("liteseg_inflight_requests", "HTTP requests being handled.", lambda: self._inflight)

    def request_started(self) -> None:
        with self._lock:
            self._inflight += 1

    def request_finished(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._inflight -= 1
        self.requests.inc(endpoint, method, str(status))
        self.latency.observe(seconds, endpoint)

    def render(self) -> str:
        """The Prometheus text format (version 0.0.4)."""
        lines: list[str] = []
        for metric in (self.requests, self.latency, self.errors, self.batch_size, self.inference, self.queue,
                       self.inflight):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
