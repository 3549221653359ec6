"""Operator side: connect Azure DevOps organizations and keep the extension installed in them.

`container-mapping onboard`, `onboard sync` and `offboard` live here. Only `commands` is imported
when the parser is built; the modules that need the `azure` extra (azure-devops, azure-identity,
rich) are imported by the handlers, so the agent side and `--help` never load them.
"""
