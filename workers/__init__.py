"""arq workers: ingest (normalise, dedupe, publish) and the jobs that follow."""
