"""The flow's memory-bounded merge loop (flows/merge.py), with stand-in futures."""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from flows.merge import completed, merge_as_completed


class Payload:
    """A task result that can be weakly referenced (to see when it is freed)."""

    def __init__(self, value: int) -> None:
        self.value = value


class FakeFuture:
    """Finishes when ``finish()`` is called; callbacks run then (as Prefect's do)."""

    def __init__(self, value: int) -> None:
        self.task_run_id = uuid.uuid4()
        self._value: Payload | None = Payload(value)
        self._callbacks: list[Callable[[Any], None]] = []
        self.done = False

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        if self.done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def finish(self) -> None:
        self.done = True
        for fn in self._callbacks:
            fn(self)

    def result(self) -> Payload:
        assert self._value is not None
        value, self._value = self._value, None  # hand over the only strong reference
        return value


def test_merges_per_key_in_completion_order_and_flags_the_last() -> None:
    futures = [FakeFuture(v) for v in (1, 2, 3, 4, 5)]
    owner = {f.task_run_id: ("a" if i % 2 == 0 else "b") for i, f in enumerate(futures)}
    order = [futures[i] for i in (3, 0, 4, 1, 2)]

    def finish_in_order() -> None:
        # Only once the loop has registered its callbacks on every future.
        while not all(f._callbacks for f in futures):
            time.sleep(0.001)
        for f in order:
            f.finish()

    finisher = threading.Thread(target=finish_in_order)
    finisher.start()
    merged: dict[str, Payload] = {}
    calls: list[tuple[str, bool]] = []
    seen: list[list[int]] = []

    def merge(x: Payload, y: Payload) -> Payload:
        seen.append([x.value, y.value])
        return Payload(x.value * 10 + y.value)

    pending = list(futures)
    merge_as_completed(pending, owner, merged, merge, lambda k, last: calls.append((k, last)))
    finisher.join()
    assert pending == []  # the caller's list is emptied
    # Completion order 4(b), 1(a), 5(a), 2(b), 3(a) -> a: (1, 5) then 3; b: (4, 2).
    assert merged["a"].value == (1 * 10 + 5) * 10 + 3 and merged["b"].value == 4 * 10 + 2
    assert calls == [("b", False), ("a", False), ("a", False), ("b", True), ("a", True)]


def test_completed_holds_no_reference_to_a_yielded_future() -> None:
    futures = [FakeFuture(v) for v in range(3)]
    for f in futures:
        f.finish()
    refs = [weakref.ref(f) for f in futures]
    pending: list[Any] = list(futures)
    del futures
    iterator = completed(pending)
    first = next(iterator)
    del first
    gc.collect()
    assert sum(r() is None for r in refs) == 1  # freed although two are still to come
    assert len(list(iterator)) == 2


def test_frozen_heap_leaves_older_objects_out_and_frees_new_cycles() -> None:
    """Objects alive before the block are not scanned by collections inside it (an old
    garbage cycle survives them); cycles made inside are freed; all is unfrozen after."""
    from flows.merge import frozen_heap

    assert gc.get_freeze_count() == 0
    old = Payload(1)
    old.self = old  # type: ignore[attr-defined]
    old_ref = weakref.ref(old)
    del old  # garbage, but only a collection can free a cycle
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        new = Payload(2)
        new.self = new  # type: ignore[attr-defined]
        new_ref = weakref.ref(new)
        del new
        gc.collect()
        assert new_ref() is None
        assert old_ref() is not None  # frozen: skipped
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old_ref() is None


def test_frozen_heap_leaves_someone_elses_freeze_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.merge import frozen_heap

    gc.freeze()
    try:
        # The count itself moves when a frozen object is freed (other threads run): what must
        # not happen is a second freeze or an unfreeze of the other party's objects.
        calls: list[str] = []
        monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
        with frozen_heap():
            pass
        assert calls == []
        monkeypatch.undo()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
