"""Several grader-service replicas behind one gRPC channel: client-side round-robin with fail-over.

    client = ReplicaClient(["127.0.0.1:50051", "127.0.0.1:50052"], token)

gRPC does the work: the channel's target lists every replica (`ipv4:a:p1,b:p2`), its service
config picks the `round_robin` load-balancing policy (each call goes to the next READY replica)
and a retry policy for UNAVAILABLE, so a call whose replica dies mid-request is sent again to
another one (grading is a pure function of grader version, sample and item, so that is safe).
A replica that is down is skipped until it is back. Host names are resolved once, here, because
a multi-address target takes IP addresses.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any

from ..grader_service.client import GraderClient

SERVICE = "rft.grader.v1.GraderService"
# gRPC retries only UNAVAILABLE: the replica went away (or was never reached); the session's
# OutageWait still rides out an outage of every replica at once.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": SERVICE}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


def _ip_endpoint(address: str) -> str:
    """`host:port` with the host as an IP address (`[v6]:port` for IPv6)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"grader address {address!r} is not host:port")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        if not infos:
            raise ValueError(f"grader address {address!r}: {host!r} does not resolve") from None
        ip = ipaddress.ip_address(infos[0][4][0])
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def replica_target(addresses: Sequence[str]) -> str:
    """The gRPC target naming every replica: `ipv4:10.0.0.1:50051,10.0.0.2:50051` (or ipv6:...)."""
    if not addresses:
        raise ValueError("no grader replica addresses")
    endpoints = [_ip_endpoint(a) for a in addresses]
    scheme = "ipv6" if all(e.startswith("[") for e in endpoints) else "ipv4"
    if scheme == "ipv4" and any(e.startswith("[") for e in endpoints):
        raise ValueError(f"grader addresses mix IPv4 and IPv6: {list(addresses)}")
    return f"{scheme}:{','.join(endpoints)}"


def channel_options() -> list[tuple[str, Any]]:
    """What a replica channel sets on top of GraderClient's options: round_robin and its retry policy."""
    return [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1)]


class ReplicaClient(GraderClient):
    """A GraderClient whose one channel spreads calls over every replica in `addresses`."""

    def __init__(self, addresses: Sequence[str], token: str | None = None, **kwargs: Any) -> None:
        self.addresses = list(addresses)
        extra = [*channel_options(), *kwargs.pop("channel_options", ())]
        super().__init__(replica_target(self.addresses), token, channel_options=extra, **kwargs)
