"""Read-only amoCRM data (account, pipelines, custom fields), cached for the info endpoints
and the lead intake."""

from amogate.info.cache import CacheEntry, InfoCache, InfoSource, Kind

__all__ = ["CacheEntry", "InfoCache", "InfoSource", "Kind"]
