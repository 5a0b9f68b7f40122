"""The client side of grading, one path for every client (train, eval, `rft graders`, TRL).

- `spec_file`: read a grader file (.json, .yaml, .py) into a spec;
- `answers`: the final answer a grader sees of a model's reply;
- `session`: an uploaded grader on a service (embedded or remote), outages ridden out;
- `verdict`: pass or not, and which service errors are the user's.
"""
