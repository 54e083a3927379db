"""A labelled metric's children looked up once (``Children``): the same counts as
``labels()``, and a bounded cache whatever the labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from arqd.observability.metrics import Children


def value(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("hits_total", labels)


def test_children_count_as_labels_does_and_the_cache_stays_bounded() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "hits", ["path"], registry=registry)
    children = Children(counter, keep=2)
    for path in ("/a", "/b", "/c", "/a", "/c", "/c"):
        children(path).inc()
    assert (value(registry, path="/a"), value(registry, path="/c")) == (2, 3)
    assert children("/a") is counter.labels("/a")  # the same child, looked up once
    assert len(children) == 2  # "/c" came third: counted, not remembered
