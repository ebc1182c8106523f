"""Static files: whitenoise's compressed, hashed copies once collectstatic has run; the plain names before."""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Manifest storage that never fails a page for want of a manifest entry.

    Without a manifest (a fresh checkout, the in-process tests) pages link the plain names, which
    whitenoise then serves from the apps' folders (WHITENOISE_USE_FINDERS); with one, every page links
    the hashed, compressed copies that whitenoise serves with a year's cache. A file added since the last
    collectstatic is linked by its plain name, with a warning, rather than breaking the page with a 500.
    """

    def url(self, name: str, force: bool = False) -> str:
        if self.hashed_files:
            try:
                return super().url(name, force)
            except ValueError:
                logger.warning("%s is not in the static files manifest: run `manage.py collectstatic`", name)
        return self._url(lambda clean_name, *_rest: clean_name, name, force)
