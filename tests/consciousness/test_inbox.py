"""The engine inbox: fair across senders, bounded, rejections reported, impacts applied at their due tick."""

from consciousness.engine import Stimulus
from consciousness.inbox import MAX_PENDING_PER_SENDER, MAX_STIMULI_PER_TICK, EngineInbox

EXCITE = Stimulus(kind="excite", intensity=0.5)


def test_a_flooding_sender_cannot_starve_another():
    inbox = EngineInbox()
    for n in range(MAX_PENDING_PER_SENDER):
        inbox.add_stimulus(EXCITE, key=f"flood-{n}", ref=n, sender="flooder")
    assert inbox.add_stimulus(EXCITE, key="victim-1", ref="v", sender="victim")
    inbox.take(0.0)
    assert {"key": "victim-1", "ref": "v"} in inbox.applied  # in the very next tick, not after the flood


def test_senders_are_served_round_robin_up_to_the_per_tick_cap():
    inbox = EngineInbox()
    for sender in ("a", "b", "c"):
        for n in range(20):
            inbox.add_stimulus(EXCITE, key=f"{sender}{n}", sender=sender)
    inputs = inbox.take(0.0)
    assert len(inputs.stimuli) == MAX_STIMULI_PER_TICK
    senders = [meta["key"][0] for meta in inbox.applied]
    assert senders[:6] == ["a", "b", "c", "a", "b", "c"]
    assert max(senders.count(s) for s in "abc") - min(senders.count(s) for s in "abc") <= 1


def test_a_stimulus_that_cannot_wait_is_rejected_to_its_sender():
    inbox = EngineInbox()
    for n in range(MAX_PENDING_PER_SENDER):
        assert inbox.add_stimulus(EXCITE, key=f"k{n}", sender="s")
    assert not inbox.add_stimulus(EXCITE, key="late", ref="r-late", sender="s")
    inbox.take(0.0)
    assert {"key": "late", "ref": "r-late", "rejected": "queue_full"} in inbox.applied
    inbox.take(0.1)
    assert all(meta.get("key") != "late" for meta in inbox.applied)  # reported once


def test_impacts_apply_at_their_due_tick_in_a_fixed_order():
    tick = {"next": 10}
    inbox = EngineInbox(next_tick=lambda: tick["next"])
    inbox.add_impact({"scup_change": 1.0, "source": "b_run"}, due=12)
    inbox.add_impact({"scup_change": 2.0, "source": "a_run"}, due=12)
    inbox.add_impact({"scup_change": 3.0, "source": "late_run"}, due=9)
    assert [i.source for i in inbox.take(0.0).impacts] == ["late_run"]
    tick["next"] = 11
    assert inbox.take(0.1).impacts == ()
    tick["next"] = 12
    assert [i.source for i in inbox.take(0.2).impacts] == ["a_run", "b_run"]
    assert inbox.take(0.3).impacts == ()
