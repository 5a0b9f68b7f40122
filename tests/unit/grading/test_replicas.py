"""ReplicaClient builds its one channel through GraderClient's public `channel_options`."""

from __future__ import annotations

import json

from rftkit.grader_service import keepalive
from rftkit.grading.replicas import ReplicaClient


def test_replica_channel_is_round_robin_with_the_clients_keepalive() -> None:
    with ReplicaClient(["127.0.0.1:1", "127.0.0.1:2"], "token") as client:
        options = dict(client.channel_options)
        assert client.address == "ipv4:127.0.0.1:1,127.0.0.1:2"
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert all(options[name] == value for name, value in keepalive.CLIENT_OPTIONS)
    assert len(client.channel_options) == len(options)  # each option once
