"""The roles of a run beyond the trainer's own process: grader replicas, rollout servers, trainer ranks.

Each is started by `rft train` on one machine (see `cluster:` in the config) and can as well be
started on its own by a scheduler, pointing the trainer at it by address.
"""
