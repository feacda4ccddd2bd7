"""lmms-eval's command line with `sarchat_oracle`, a backend for tests that needs no model,
registered first. Run it with the lmms_eval environment's Python:

    .venvs/lmms_eval/bin/python tests/support/lmms_oracle.py eval --model sarchat_oracle \
        --model_args blank_every=2 --include_path TASKS --tasks sarchat ...

The oracle answers each record with its reference answer (the assistant message), and every
`blank_every`-th record (0: none) with `blank_text`, so that a run has known scores that are
neither 0 nor 100. Any other --model is lmms-eval's own.
"""

from __future__ import annotations

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms


class SarchatOracle(lmms):
    is_simple = True  # requests carry (context, generation kwargs, doc_to_visual, doc_id, task, split)

    def __init__(self, blank_every: int = 0, blank_text: str = "", **kwargs) -> None:
        super().__init__()
        self.blank_every, self.blank_text = int(blank_every), str(blank_text)

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers = []
        for request in requests:
            *_, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            if self.blank_every and doc_id % self.blank_every == self.blank_every - 1:
                answers.append(self.blank_text)
            else:
                answers.append(next(m["content"] for m in doc["messages"] if m["role"] == "assistant"))
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("the SARChat tasks only generate")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the SARChat tasks only generate")


if __name__ == "__main__":
    from lmms_eval.cli.dispatch import main
    from lmms_eval.models import MODEL_REGISTRY_V2
    from lmms_eval.models.registry_v2 import ModelManifest

    MODEL_REGISTRY_V2.register_manifest(
        ModelManifest(model_id="sarchat_oracle", simple_class_path="lmms_oracle.SarchatOracle"), overwrite=True)
    main()
