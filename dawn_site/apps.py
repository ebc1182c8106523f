from django.apps import AppConfig


class DawnSiteConfig(AppConfig):
    """The composition of a running DAWN: it holds the runtick command."""

    name = "dawn_site"
    verbose_name = "DAWN"
