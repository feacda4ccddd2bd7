"""Stage 1, the dataset: SARDet-100K (fetched, or generated for the demo) filtered as the paper
says, the six tasks generated into the training mix and the nine test files, their validation
and statistics (rules/dataset.smk)."""
