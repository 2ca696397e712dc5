"""Host-aware rules: watch each Docker host's metrics (Ganglia names, from psutil or gmond) and act
when a rule's threshold has been met a number of polls in a row. See docs/host-aware.md."""
