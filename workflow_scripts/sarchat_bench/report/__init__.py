"""Stage 4, the report: Table 3 and its companion tables, the paper's figures, and the answer
browser (rules/evaluate.smk, `snakemake --report`)."""
