"""A model job's contract (sarchat_bench.models.jobs) as a test writes it for a tiny model."""

import json


def spec(tiny, arch, **settings):
    return json.dumps({"model_path": str(tiny[arch]), "model_type": arch, "template": arch, "source": {"tiny": arch},
                       "env": {"MAX_PIXELS": "12544"}, "load": {}, "environment": "default",
                       "settings": {"backend": "transformers", "torch_dtype": "float32", "max_new_tokens": 4,
                                    **settings}})


def run_options(tmp_path, batch_size=2):
    return json.dumps({"options": {"batch_size": batch_size, "requests_per_call": 64}, "threads": 1,
                       "cache_dir": str(tmp_path / "cache")})
