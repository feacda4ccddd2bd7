"""Stage 3, evaluation: reading models' answers, the metrics of Table 3 with intervals, scoring
one test file, and baselines made without a model (rules/evaluate.smk)."""
