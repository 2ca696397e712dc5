"""Config texts shared by the unit tests."""

# The adapters.yml of ClusterHQ's users (DESIGN.md section 2): it must load unchanged.
CLUSTERHQ_SAMPLE = """\
version: 1
endpoints:
  "POST /*/containers/create":
    pre: [flocker, weave]
  "POST /*/containers/*/start":
    post: [weave]
adapters:
  weave: http://weave/extension
  flocker: http://flocker/flocker-adapter
"""
