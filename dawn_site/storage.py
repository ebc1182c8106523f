"""Static files: whitenoise's compressed, hashed copies once collectstatic has run; the plain names before."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Manifest storage that does not fail before `collectstatic` has written a manifest.

    Without a manifest (a fresh checkout, the in-process tests) pages link the plain names, which
    whitenoise then serves from the apps' folders (WHITENOISE_USE_FINDERS); with one, every page links
    the hashed, compressed copies that whitenoise serves with a year's cache.
    """

    def url(self, name: str, force: bool = False) -> str:
        if not self.hashed_files:
            return self._url(lambda clean_name, *_rest: clean_name, name, force)
        return super().url(name, force)
