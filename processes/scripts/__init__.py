"""Analysis process scripts, one module each, run with `python -m processes.scripts.<name>`.

Kept free of imports so reading the registry never loads numpy.
"""

SCRIPTS: tuple[str, ...] = (
    "neural_analyzer",
    "consciousness_processor",
    "chaos_engine",
    "memory_consolidator",
    "dream_generator",
)
