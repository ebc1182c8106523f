"""Engine.context(at=T): the context a run saw at tick T, rebuilt bit for bit from the history window."""

import pytest

from consciousness.engine import Engine, StepInputs


@pytest.fixture(scope="module")
def history(cfg):
    """An engine 300 ticks on, and the context it gave at each of those ticks."""
    engine = Engine(cfg, seed=3)
    seen = {}
    for i in range(300):
        engine.advance(StepInputs(timestamp=float(i)))
        seen[engine.state.tick_number] = engine.context(128)
    return engine, seen


@pytest.mark.parametrize("back", [1, 10, 127, 128])
def test_an_earlier_ticks_context_is_the_one_given_then_without_the_mood(history, back):
    engine, seen = history
    tick = engine.state.tick_number - back
    expected = {k: v for k, v in seen[tick].items() if k != "mood"}
    assert engine.context(128, at=tick) == expected


def test_at_the_current_tick_it_is_the_current_context(history):
    engine, seen = history
    assert engine.context(128, at=engine.state.tick_number) == seen[engine.state.tick_number] == engine.context(128)


@pytest.mark.parametrize("at", [171, 301, -1, True, 2.5])
def test_a_tick_out_of_the_history_or_not_yet_done_is_refused(history, at):
    engine, _seen = history
    with pytest.raises(ValueError):
        engine.context(128, at=at)


def test_a_shorter_window_reaches_further_back(history):
    engine, seen = history
    assert engine.context(16, at=60)["activity"] == seen[60]["activity"][-16:]
