"""The gRPC grader service, its grader store, auth, metrics, and the client library."""
