"""Shared fixtures for the engine tests: no database, no Django."""

import pytest

from consciousness.engine import EngineConfig

# a config from config.yaml's consciousness section, as the runtime passes it
CONFIG = {"tick_rate": 10, "initial_scup": 50, "entropy_target": 0.5, "seed": 42}


@pytest.fixture(scope="session")
def cfg() -> EngineConfig:
    return EngineConfig.from_mapping(CONFIG)
