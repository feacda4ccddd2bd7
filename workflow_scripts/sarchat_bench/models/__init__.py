"""Stage 2, the models: the registry, the model-job contract, fetching hub models and building
tiny ones, LoRA training with ms-swift, sharded resumable inference (local or served), the
environments jobs run in, and SLURM pre-flight checks (rules/models.smk, infer_shard)."""
