"""Prometheus counters and histograms for a service's per-request series, summed in batches.

prometheus_client's ``Counter`` and ``Histogram`` take a lock on every increment and observation:
a scored row touches five series, a few microseconds of a request that costs about a hundred. Here
a request only appends its values to a queue (a ``deque``: safe across threads without a lock);
they are summed when ``/metrics`` is read, and when ``BATCH`` values wait, so the queue stays
small without a reader. What ``/metrics`` shows is the same text: ``<name>_total`` for a counter
(one series per label value), ``_bucket``/``_count``/``_sum`` for a histogram.

    tally = Tally(registry)
    requests = tally.counter("predict_requests", "Requests by status", label="status", values=("200",))
    requests.add("200")
    latency = tally.histogram("predict_latency_seconds", "Time to answer", buckets=(0.001, 0.01))
    latency.observe(0.0004)
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable

BATCH = 4096  # values a series queues before the request that adds the next one sums them


class Tally:
    """A Prometheus collector of counters and histograms fed by appends (register it once)."""

    def __init__(self, registry):
        self._series: list[Counted | Observed] = []
        self._lock = threading.Lock()
        registry.register(self)

    def counter(self, name: str, documentation: str, label: str | None = None, values: Iterable[str] = ()):
        """A counter; with ``label``, one series per value (``values``: shown from the start, at 0)."""
        series = Counted(self, name, documentation, label, values)
        self._series.append(series)
        return series

    def histogram(self, name: str, documentation: str, buckets: Iterable[float]):
        """A histogram with these upper bounds (``+Inf`` is added)."""
        series = Observed(self, name, documentation, sorted(buckets))
        self._series.append(series)
        return series

    def sum_up(self, series: Counted | Observed | None = None) -> None:
        """Fold what waits into the totals (of ``series``, or of every series)."""
        with self._lock:
            for one in [series] if series is not None else self._series:
                one._fold()

    def describe(self):
        return []  # names are checked by prometheus_client only for series it makes itself

    def collect(self):
        self.sum_up()
        for series in self._series:
            yield series.family()


class Counted:
    """One counter (``add``: one, ``add_each``: one per item, ``add(n=...)``: n)."""

    def __init__(self, tally: Tally, name: str, documentation: str, label: str | None, values):
        self._tally, self.name, self.documentation, self.label = tally, name, documentation, label
        self._waiting: deque = deque()
        self._totals: dict[str | None, float] = {str(v): 0.0 for v in values} if label else {None: 0.0}

    def add(self, value: str | None = None, n: float = 1) -> None:
        self._waiting.append((value, n))
        if len(self._waiting) > BATCH:
            self._tally.sum_up(self)

    def add_each(self, values: list) -> None:
        """One for each of ``values`` (label values, turned into text)."""
        self._waiting.append((values, None))
        if len(self._waiting) > BATCH:
            self._tally.sum_up(self)

    def _fold(self) -> None:
        waiting, totals = self._waiting, self._totals
        while waiting:
            value, n = waiting.popleft()
            if n is None:
                for one in value:
                    key = str(one)
                    totals[key] = totals.get(key, 0.0) + 1
            else:
                key = None if value is None else str(value)
                totals[key] = totals.get(key, 0.0) + n

    def family(self):
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            self.name, self.documentation, labels=[self.label] if self.label else None
        )
        for key, total in self._totals.items():
            family.add_metric([key] if self.label else [], total)
        return family


class Observed:
    """One histogram (``observe``: a value, ``observe_each``: a list of values)."""

    def __init__(self, tally: Tally, name: str, documentation: str, bounds: list[float]):
        self._tally, self.name, self.documentation, self.bounds = tally, name, documentation, bounds
        self._waiting: deque = deque()
        self._counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._waiting.append(value)
        if len(self._waiting) > BATCH:
            self._tally.sum_up(self)

    def observe_each(self, values: list[float]) -> None:
        self._waiting.append(values)
        if len(self._waiting) > BATCH:
            self._tally.sum_up(self)

    def _fold(self) -> None:
        waiting, counts, bounds = self._waiting, self._counts, self.bounds
        total = 0.0
        while waiting:
            item = waiting.popleft()
            for value in item if isinstance(item, list) else (item,):
                counts[bisect_left(bounds, value)] += 1  # Prometheus buckets hold values <= bound
                total += value
        self._sum += total

    def family(self):
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        cumulative, running = [], 0
        for bound, count in zip([*self.bounds, float("inf")], self._counts, strict=True):
            running += count
            cumulative.append((floatToGoString(bound), running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, None)  # add_metric drops the count too when a bound is < 0
        family.add_sample(f"{self.name}_count", {}, running)
        if not self.bounds or self.bounds[0] >= 0:  # OpenMetrics: no sum where values may be negative
            family.add_sample(f"{self.name}_sum", {}, self._sum)
        return family
