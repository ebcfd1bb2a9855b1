"""The Space's bookkeeping on its own: rollouts freed by time, by count and by leaving; slots that never leak."""

import threading
import time

import pytest

from mirage_viz.ui.sessions import RunSlots, RunTicket, ServerBusy, SessionBusy, SessionStore, VisitorBusy, watched


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRollout:  # the store never looks inside a rollout
    pass


def finished_run(store: SessionStore, session_id: str) -> RunTicket:
    ticket = store.begin_run(session_id)
    store.publish(ticket, FakeRollout())
    (store.export_folder(ticket) / "rollout.gif").write_bytes(b"GIF89a")
    store.end_run(ticket)
    return ticket


def test_an_idle_session_is_freed_after_its_time_to_live_with_its_downloads(tmp_path):
    clock = Clock()
    store = SessionStore(tmp_path, ttl_s=60, clock=clock)
    finished_run(store, "a")
    clock.now = 30
    assert store.rollout("a") is not None  # a scrub counts as a use
    clock.now = 80
    store.sweep()
    assert store.rollout("a") is not None and store.stats()["export_folders"] == 1
    clock.now = 200
    store.sweep()
    assert store.rollout("a") is None and store.stats() == {"sessions": 0, "rollouts": 0, "running": 0, "open_pages": 0,
                                                        "export_folders": 0}
    assert "freed after 1 min without use" == store.freed_reason("a")


def test_beyond_the_cap_the_least_recently_used_idle_rollout_goes_never_a_running_one(tmp_path):
    clock = Clock()
    store = SessionStore(tmp_path, max_rollouts=2, clock=clock)
    running = store.begin_run("running")
    store.publish(running, FakeRollout())
    clock.now = 1
    finished_run(store, "old")
    clock.now = 2
    finished_run(store, "new")  # three hold a rollout: "old" goes, the running one stays
    assert store.rollout("old") is None and "to make room" in store.freed_reason("old")
    assert store.rollout("new") is not None and store.stats()["rollouts"] == 2 and store.stats()["export_folders"] == 1
    store.end_run(running)


def test_one_run_per_session_and_a_closed_session_keeps_nothing(tmp_path):
    store = SessionStore(tmp_path)
    ticket = store.begin_run("a")
    with pytest.raises(SessionBusy, match="still running"):
        store.begin_run("a")
    assert store.request_stop("a") and ticket.should_stop
    store.close("a")  # the tab closed mid-run
    store.publish(ticket, FakeRollout())
    assert ticket.closed and store.export_folder(ticket) is None and store.rollout("a") is None
    store.end_run(ticket)
    assert list(tmp_path.iterdir()) == [] and store.stats()["sessions"] == 0


def test_a_run_abandoned_by_its_consumer_no_longer_blocks_its_session(tmp_path):
    store = SessionStore(tmp_path, abandon_after_s=0.05)
    ticket = store.begin_run("a")
    updates = watched(ticket, iter([1, 2, 3]))
    assert next(updates) == 1  # handed to a consumer that never comes back
    time.sleep(0.1)
    assert ticket.abandoned(0.05)
    second = store.begin_run("a")
    assert ticket.closed and second is not ticket
    store.end_run(second)


def test_a_new_run_frees_the_previous_rollout_and_its_downloads_stay_valid_until_replaced(tmp_path):
    store = SessionStore(tmp_path)
    first = finished_run(store, "a")
    folder = next(tmp_path.iterdir())
    second = store.begin_run("a")
    assert store.rollout("a") is None and folder.exists() and first is not second  # the old links still answer
    new = store.export_folder(second)
    assert folder.exists() and new.exists()  # while the new downloads are written and handed out
    store.end_run(second)
    assert not folder.exists() and new.exists() and list(tmp_path.iterdir()) == [new]


def test_the_line_is_bounded_first_come_first_served_and_stop_leaves_it():
    slots = RunSlots(running=1, waiting=2, poll_s=0.01)
    holder, first, second, third = (RunTicket(name) for name in ("holder", "first", "second", "third"))
    assert list(slots.wait(holder)) == [] and slots.holds(holder)
    waits = {t: slots.wait(t) for t in (first, second)}
    assert next(waits[first]) == 0 and next(waits[second]) == 1  # their places in line
    with pytest.raises(ServerBusy, match=r"1 rollout\(s\) running and 2 waiting"):
        next(slots.wait(third))
    second.stop.set()  # Stop while waiting: it leaves the line without a slot
    assert list(waits[second]) == [] and not slots.holds(second)
    slots.release(holder)
    assert list(waits[first]) == [] and slots.holds(first)
    assert slots.stats() == {"running": 1, "waiting": 0}
    slots.release(first)


def test_the_slot_of_an_abandoned_run_is_taken_back():
    slots = RunSlots(running=1, waiting=1, poll_s=0.01, abandon_after_s=0.05)
    lost = RunTicket("lost")
    assert list(slots.wait(lost)) == []
    lost.suspended_since = time.monotonic()  # its consumer vanished between two updates
    waiting = RunTicket("waiting")
    done = threading.Event()

    def take() -> None:
        for _ in slots.wait(waiting):
            pass
        done.set()

    threading.Thread(target=take, daemon=True).start()
    assert done.wait(5) and slots.holds(waiting) and lost.closed
    slots.release(waiting)


# -- a drive beside the rollout ------------------------------------------------------------------
class FakeDrive:  # nor inside a drive
    pass


def drive_press(store: SessionStore, session_id: str, drive: object | None = None) -> RunTicket:
    """One press of a drive: a run that frees nothing; the drive published and its downloads written."""
    ticket = store.begin_run(session_id, fresh=False)
    store.publish_drive(ticket, drive or store.drive(session_id) or FakeDrive())
    (store.export_folder(ticket, "drive") / "path.json").write_text("{}")
    store.end_run(ticket)
    return ticket


def test_a_drive_press_keeps_the_rollout_and_its_downloads_and_each_kind_has_its_folder(tmp_path):
    store = SessionStore(tmp_path)
    finished_run(store, "a")
    rollout, rollout_folder = store.rollout("a"), next(tmp_path.iterdir())
    drive_press(store, "a")
    drive = store.drive("a")
    assert isinstance(drive, FakeDrive) and store.rollout("a") is rollout and rollout_folder.exists()
    drive_folder = next(p for p in tmp_path.iterdir() if p != rollout_folder)
    assert drive_folder.name.startswith("drive-") and (drive_folder / "path.json").exists()
    drive_press(store, "a")  # the next press: a new drive folder replaces the last one, the rollout's stays
    assert store.drive("a") is drive and not drive_folder.exists() and rollout_folder.exists()
    assert len(list(tmp_path.iterdir())) == 2
    second = store.begin_run("a")  # a fresh rollout frees the rollout, not the drive; its downloads go once replaced
    assert store.rollout("a") is None and rollout_folder.exists() and store.drive("a") is drive
    with pytest.raises(ValueError, match="export kind"):
        store.export_folder(second, "../up")
    store.export_folder(second)
    store.end_run(second)
    assert not rollout_folder.exists() and sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["drive", "rollout"]
    store.close("a")
    assert store.drive("a") is None and list(tmp_path.iterdir()) == []


def test_drives_are_freed_by_time_and_count_towards_the_cap(tmp_path):
    clock = Clock()
    store = SessionStore(tmp_path, max_rollouts=2, ttl_s=60, clock=clock)
    drive_press(store, "old")
    clock.now = 1
    drive_press(store, "new")
    clock.now = 2
    finished_run(store, "rollout")  # a third session holds something: the least recently used drive goes
    assert store.drive("old") is None and "to make room" in store.freed_reason("old")
    assert store.drive("new") is not None and store.stats()["export_folders"] == 2
    clock.now = 40
    assert store.drive("new") is not None  # looking at a drive counts as a use
    clock.now = 90
    store.sweep()
    assert store.drive("new") is not None and store.rollout("rollout") is None
    clock.now = 200
    store.sweep()
    assert store.drive("new") is None and "without use" in store.freed_reason("new")
    assert list(tmp_path.iterdir()) == []


def test_a_press_of_a_closed_session_keeps_nothing_and_one_run_at_a_time(tmp_path):
    store = SessionStore(tmp_path)
    ticket = store.begin_run("a", fresh=False)
    with pytest.raises(SessionBusy):
        store.begin_run("a", fresh=False)
    store.close("a")
    store.publish_drive(ticket, FakeDrive())
    assert store.export_folder(ticket, "drive") is None and store.drive("a") is None
    store.end_run(ticket)
    assert store.stats()["sessions"] == 0 and list(tmp_path.iterdir()) == []


# -- fair sessions: open pages keep their rollouts, one visitor holds at most their share -----------------------
def test_an_open_page_is_never_evicted_and_a_store_full_of_open_pages_says_busy(tmp_path):
    closed = []
    store = SessionStore(tmp_path, max_rollouts=2, on_close=closed.append)
    for name in ("victim", "other"):  # two visitors, each with a page open
        store.page_opened(name)
        ticket = store.begin_run(name, visitor=name)
        store.publish(ticket, FakeRollout())
        store.end_run(ticket)
    with pytest.raises(ServerBusy, match="all 2 places for rollouts are held by visitors whose pages are open"):
        store.begin_run("newcomer", visitor="newcomer")
    assert store.rollout("victim") is not None and store.rollout("other") is not None and closed == []
    store.page_closed("other")  # that tab closed without Gradio's unload reaching us: now its place may be taken
    store.end_run(store.begin_run("newcomer", visitor="newcomer"))
    assert store.rollout("other") is None and "to make room" in store.freed_reason("other") and closed == ["other"]
    assert store.rollout("victim") is not None


def test_one_visitor_cannot_take_every_place_and_is_told_so(tmp_path):
    store = SessionStore(tmp_path, max_rollouts=6)
    store.page_opened("victim")
    ticket = store.begin_run("victim", visitor="10.0.0.1")
    store.publish(ticket, FakeRollout())
    store.end_run(ticket)
    for i in range(6):  # six anonymous runs (no heartbeat) from one address: each takes the place of its own oldest
        ticket = store.begin_run(f"anonymous-{i}", visitor="10.0.0.2")
        store.publish(ticket, FakeRollout())
        store.end_run(ticket)
    assert store.rollout("victim") is not None  # never evicted while its page is open
    held = [sid for sid in store._sessions if sid.startswith("anonymous") and store._sessions[sid].holding]
    assert held == ["anonymous-3", "anonymous-4", "anonymous-5"]  # the visitor's share: half the places
    for i in range(3):  # the same visitor's open pages hold their share: the next is refused, not evicting
        store.page_opened(f"anonymous-{3 + i}")
    with pytest.raises(VisitorBusy, match="you already hold 3 rollouts or drives in other open tabs"):
        store.begin_run("anonymous-6", visitor="10.0.0.2")
    store.end_run(store.begin_run("anonymous-5", visitor="10.0.0.2"))  # running again in a tab it holds is fine


def test_one_visitor_has_at_most_their_share_of_the_line():
    slots = RunSlots(running=2, waiting=4, poll_s=0.01, per_visitor=2)
    first, second, third = (RunTicket(name, visitor="10.0.0.2") for name in ("a", "b", "c"))
    assert list(slots.wait(first)) == []
    waiting = slots.wait(second)
    assert list(waiting) == []
    with pytest.raises(VisitorBusy, match=r"you already have 2 rollout\(s\) running or waiting"):
        next(slots.wait(third))
    other = RunTicket("d", visitor="10.0.0.3")
    assert next(slots.wait(other)) == 0  # another visitor still gets in line
    for ticket in (first, second):
        slots.release(ticket)
