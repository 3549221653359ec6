"""Sinks: where post-job sends a report (see `interface`), one module per wire protocol.

The protocol names and Defender's endpoint live here, importing nothing, because the task
reads its inputs before it knows whether anything will be sent at all.
"""

DEFENDER_ENDPOINT = (
    "https://dfdinfra-afdendpoint-prod-d5fqbucbg7fue0cf.z01.azurefd.net"
    "/azuredevops/v1/container-mappings"
)
PROTOCOLS = ("defender", "mapping-service")  # the values of `interface.SinkProtocol`
