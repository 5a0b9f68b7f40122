"""examples/openai_sdk/quickstart.py end to end against a real `rft serve --http-port` (the tiny model):
files, a reinforcement job watched to `succeeded`, checkpoints, chat with the fine-tuned model, an eval
run on the base and the fine-tuned model, the failed output items. A few training steps only."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from rftkit.grader_service.http.testing import ROOT, http_service
from rftkit.grader_service.testing import TOKEN_A, TOKEN_B

pytestmark = pytest.mark.timeout(600)
SCRIPT = ROOT / "examples" / "openai_sdk" / "quickstart.py"


def test_quickstart_runs_end_to_end(tmp_path) -> None:
    tiny = ROOT / "examples" / "tiny" / "config.yaml"
    env = {"RFT_HTTP_CHAT_KV_CACHE_MB": "64"}
    with http_service(tmp_path, "--sandbox", "process", "--base-model", f"tiny={tiny}", env=env) as service:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--base-url", service.base_url, "--api-key", TOKEN_A,
             "--train-lines", "16", "--valid-lines", "8", "--max-steps", "4", "--quick"],
            capture_output=True, text=True, timeout=540, cwd=tmp_path,
        )  # fmt: skip
        out = proc.stdout
        assert proc.returncode == 0, f"{out[-3000:]}\n{proc.stderr[-3000:]}\n{service.log_text()[-3000:]}"
        model = re.search(r"fine-tuned model: (ft:tiny:quickstart:\w+)", out).group(1)
        assert "[metrics] Step 4" in out and "The job has successfully completed" in out
        assert re.search(r"step \d+: " + re.escape(model) + r":ckpt-step-\d+", out)
        assert re.search(r"chat: .* -> '", out)
        assert re.search(r"eval tiny: completed, passed \d+/8 \(errored 0\)", out)
        assert re.search(r"eval " + re.escape(model) + r": completed, passed \d+/8 \(errored 0\)", out)
        assert out.rstrip().endswith("done")

        client = service.client(TOKEN_A)
        (evaluation,) = client.evals.list().data
        runs = {r.name: r for r in client.evals.runs.list(evaluation.id)}
        assert set(runs) == {"tiny", model}
        for run in runs.values():
            assert run.id.startswith("evalrun_") and run.model == run.name
            counts = run.result_counts
            assert counts.total == 8 and counts.passed + counts.failed == 8
            (criterion,) = run.per_testing_criteria_results
            assert (criterion.testing_criteria, criterion.passed) == ("exact_word", counts.passed)
            failed = list(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id, status="fail"))
            passed = list(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id, status="pass"))
            assert len(failed) == counts.failed and len(passed) == counts.passed
            for item in failed:
                assert item.results[0].passed is False
                assert item.sample.output[0].content != item.datasource_item["answer"]
            for item in passed:
                assert item.sample.output[0].content == item.datasource_item["answer"]
        assert "failed #" in out or runs[model].result_counts.failed == 0
        # a checkpoint answers by its name too
        job = client.fine_tuning.jobs.list().data[0]
        checkpoint = client.fine_tuning.jobs.checkpoints.list(job.id).data[0].fine_tuned_model_checkpoint
        chat = client.chat.completions.create(
            model=checkpoint, messages=[{"role": "user", "content": "Which item is first?\nl,v,h,a,k"}],
            max_completion_tokens=4, temperature=0,
        )  # fmt: skip
        assert chat.model == checkpoint and chat.choices[0].message.content is not None
        # the chat model is the tenant's own: another tenant cannot call it, nor see the eval
        other = service.client(TOKEN_B)
        with pytest.raises(Exception) as caught:
            other.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert getattr(caught.value, "status_code", None) == 404
        assert other.evals.list().data == []
