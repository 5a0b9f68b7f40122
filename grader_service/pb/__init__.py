"""Generated from proto/rft/grader/v1/grader.proto by `python -m rftkit.grader_service.protogen`."""
