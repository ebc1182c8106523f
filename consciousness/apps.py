from django.apps import AppConfig


class ConsciousnessConfig(AppConfig):
    name = "consciousness"
    verbose_name = "Consciousness engine"
