"""The endpoints the hooked candidates put their one pre-hook on (shared by the config and the adapter)."""

HOOKED_ENDPOINTS = ("GET /*/_ping", "GET /*/containers/json", "POST /*/containers/create")
