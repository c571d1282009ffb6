"""Jobs: one model step (score, judge, embed, revise) over a selection of a dataset's rows, run in the
process or on a Ray cluster, resumable, cancellable and recorded in the jobs table."""
