"""A model job's contract (sarchat_bench.models.jobs) as a test writes it for a tiny model."""

import json


def spec(tiny, arch, **settings):
    return json.dumps({"model_path": str(tiny[arch]), "model_type": arch, "template": arch, "source": {"tiny": arch},
                       "env": {"MAX_PIXELS": "12544"}, "load": {}, "environment": "default",
                       "settings": {"backend": "transformers", "torch_dtype": "float32", "max_new_tokens": 4,
                                    **settings}})


def run_options(tmp_path, batch_size=2, image_root=None):
    """How the job runs; `image_root`: the SARDet-100K folder its records' images are below."""
    return json.dumps({"options": {"batch_size": batch_size, "requests_per_call": 64}, "threads": 1,
                       "cache_dir": str(tmp_path / "cache"), "image_root": image_root and str(image_root)})
