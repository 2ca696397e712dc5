"""The built-in ``qos`` adapter: rate limits and DSCP marks on powerstrip's networks, by policy (docs/qos.md)."""
