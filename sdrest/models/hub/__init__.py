"""Models from the hubs: Hugging Face, Civitai and plain URLs (issue 20).

``parse_source`` (sources.py) reads the one source syntax; ``HubConfig`` (config.py) holds the
endpoints, tokens and limits; every failure is a ``HubError`` (errors.py) with a stable code.
"""

from sdrest.models.hub.config import HubConfig
from sdrest.models.hub.errors import HubError
from sdrest.models.hub.sources import CivitaiSource, HfSource, Source, SourceError, UrlSource, parse_source

__all__ = ["CivitaiSource", "HfSource", "HubConfig", "HubError", "Source", "SourceError", "UrlSource", "parse_source"]
