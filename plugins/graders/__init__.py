"""Built-in grader types, one module each, registered under the entry-point group `rftkit.graders`."""
