"""rftkit: reinforcement fine-tuning with your own graders, on your own machines.

The repository root is this package; each top-level folder is one part of it, imported as
`rftkit.<folder>`, and the parts import one another by relative imports, lowest first:

    core         shared records, error flags and the rules every client applies
    sandbox      isolation backends and warm worker pools for uploaded Python
    plugins      grader types and model plugins (entry points)
    grader_service  the gRPC service and its client
    grading      the one client-side grading path (sessions, spec files, answers, verdicts)
    trainer      RL fine-tuning
    evals        standalone evals and the report
    cli          the `rft` command: the only part that imports all the others
"""
