"""The evidence the assessment looks for: practices that work, not file names.

Each check reads the repository (``repo.py``) and returns the lines that show the practice (empty:
not found). A file's presence is never enough where the practice can be seen at work: tracking is
found where a run is logged, not where MLflow is imported; a gate where a metric is compared with
a limit and the comparison can stop the run; monitoring where a scheduled workflow measures drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .repo import Hit, Repo

CODE = ("*.py",)
CONFIG = ("*.yaml", "*.yml", "*.toml", "*.json", "*.cfg")
RUNS_PIPELINE = (
    r"\bdvc\s+repro\b|\bmake\s+(repro|pipeline|train)\b|kedro\s+run|python\s+-m\s+\S+\s+(train|pipeline)"
)
RUNS_TESTS = (
    r"\bpytest\b|\btox\b|\bnox\b|\bunittest\b|"
    r"\b(make|just|mise\s+run|task|invoke|inv|poe|hatch|pdm\s+run|poetry\s+run)\s+([\w-]+:)?(test|tests|check)\b"
)


@dataclass(frozen=True)
class Evidence:
    id: str
    title: str
    check: Callable[[Repo], list[Hit]]
    caveat: str = ""  # what the repository cannot show (e.g. settings kept on GitHub)


def _steps(repo: Repo, run: str, triggers: set[str] | None = None) -> list[Hit]:
    """Workflow steps whose ``run`` (or action, ``uses``) matches ``run``, in workflows started by
    one of ``triggers``."""
    hits = []
    for workflow in repo.workflows():
        if triggers is not None and not workflow.triggers & triggers:
            continue
        for _, _, step in workflow.runs():
            command = str(step.get("run") or step.get("uses") or "")
            if re.search(run, command):
                first = next(line for line in command.splitlines() if re.search(run, line))
                hit = repo.first_line(workflow.file, re.escape(first.strip()))
                hits.append(hit or Hit(workflow.file, 1, first.strip()))
    return hits


def pipeline(repo: Repo) -> list[Hit]:
    """A versioned data pipeline with its lock: DVC stages and a dvc.lock that records what ran
    (or a pipeline framework's own definitions)."""
    hits = []
    for file in repo.matching("dvc.yaml", "*/dvc.yaml"):
        stages = repo.first_line(file, r"^stages:")
        lock = file.replace("dvc.yaml", "dvc.lock")
        if stages and lock in repo.files:
            hits += [stages, Hit(lock, 1, "the lock of the last run")]
    hits += repo.grep(
        r"^\s*(from|import)\s+(zenml|metaflow|kedro)\b.*(pipeline|step|FlowSpec|Pipeline)", *CODE
    )
    return hits


def tracking(repo: Repo) -> list[Hit]:
    """Experiment tracking called: a run's parameters or metrics logged, outside the tests."""
    return repo.grep(
        r"\bmlflow\.(log_(params?|metrics?|artifacts?|model|input|table|dict)|start_run|autolog|\w+\.autolog)\(|"
        r"\bwandb\.(init|log)\(|\bcomet_ml\.Experiment\(|\.log_metrics?\(|\b(MLflow|Wandb|Comet)\w*Callback\(",
        *CODE,
    )


def registry(repo: Repo) -> list[Hit]:
    """Models registered in a model registry (a version, an alias or a stage)."""
    return repo.grep(
        r"register_model\(|registered_model_name\s*=|set_registered_model_alias\(|create_model_version\(|"
        r"transition_model_version_stage\(",
        *CODE,
    )


def data_contract(repo: Repo) -> list[Hit]:
    """A data contract that runs: expectations (Great Expectations, pandera, ...) in the code, and
    a workflow that runs the pipeline or the tests they are part of."""
    contract = repo.grep(
        r"^\s*(import|from)\s+(great_expectations|pandera|deepchecks)\b|ExpectationSuite\(|"
        r"\bexpect_column_\w+|\bDataFrameSchema\(",
        *CODE,
    )
    runs = _steps(repo, f"{RUNS_PIPELINE}|{RUNS_TESTS}")
    return contract[:2] + runs[:1] if contract and runs else []


def gate(repo: Repo) -> list[Hit]:
    """A gate that can fail: a metric compared with a threshold, the comparison raising or exiting
    non-zero within a few lines (not only logged), and pull requests running it (a change is
    gated before it is merged)."""
    compared = _compared(repo)
    runs = _steps(repo, f"{RUNS_PIPELINE}|make\\s+gate|\\bgate\\b", {"pull_request"})
    return compared[:2] + runs[:1] if compared and runs else []


def _compared(repo: Repo) -> list[Hit]:
    hits = []
    for file in repo.matching(*CODE, tests=False):
        lines = (repo.text(file) or "").splitlines()
        for index, line in enumerate(lines):
            if re.search(r"(threshold|limit|bound|kpi|min_|max_|margin)\w*", line, re.I) and re.search(
                r"[<>]=?|\bpasses\(|\bnot\s+\w+\.pass", line
            ):
                after = "\n".join(lines[index : index + 8])
                if re.search(
                    r"\braise\s+\w*(Error|Exception|Exit)|sys\.exit\(\s*[1-9]|\bexit\(\s*[1-9]", after
                ):
                    hits.append(Hit(file, index + 1, line.strip()[:160]))
                    break
    return hits


def ci_tests(repo: Repo) -> list[Hit]:
    """Tests run on every change: a workflow started by pull requests or pushes runs them."""
    return _steps(repo, RUNS_TESTS, {"pull_request", "push", "pull_request_target"})


def continuous_training(repo: Repo) -> list[Hit]:
    """Training run by automation: a workflow runs the training pipeline."""
    return _steps(repo, RUNS_PIPELINE)


def delivery(repo: Repo) -> list[Hit]:
    """Automated delivery: a workflow builds or releases what is served (an image, a deployment,
    a model promoted) when main changes, on a tag or a release."""
    return _steps(
        repo,
        r"docker\s+(build|push)|docker/build-push-action|make\s+(image|promote|deploy|release)|"
        r"kubectl\s+(apply|set|rollout)|helm\s+(upgrade|install)|\bpromote\b|gcloud\s+run\s+deploy|"
        r"az\s+ml\s+online-deployment|databricks\s+bundle\s+deploy|anyscale\s+service|sam\s+deploy|"
        r"terraform\s+apply|serve\s+deploy",
        {"push", "release", "workflow_run", "workflow_dispatch"},
    )


def protected_production(repo: Repo) -> list[Hit]:
    """A production environment the deployment waits on (reviewers, branches: GitHub's settings),
    and where the repository sets those reviewers as code, that too."""
    hits = []
    for workflow in repo.workflows():
        for name, job in (workflow.data.get("jobs") or {}).items():
            environment = job.get("environment") if isinstance(job, dict) else None
            label = environment.get("name") if isinstance(environment, dict) else environment
            if isinstance(label, str) and re.search(r"prod", label, re.I):
                hit = repo.first_line(workflow.file, r"^\s*environment:.*prod|^\s*name:\s*prod")
                hits.append(hit or Hit(workflow.file, 1, f"job {name}: environment {label}"))
    if hits:
        hits += repo.grep(r"reviewers", "infra/*", "*.tf", "scripts/*", ".github/*.py")[:1]
    return hits


def monitoring(repo: Repo) -> list[Hit]:
    """Scheduled monitoring: a workflow on a schedule measures drift (or the service's metrics)."""
    return _steps(repo, r"drift|monitor|evidently|make\s+(drift|monitor)", {"schedule"})


def retraining(repo: Repo) -> list[Hit]:
    """Monitoring that can start retraining and propose the result as a change: a workflow that
    runs the pipeline and opens a pull request (or starts the workflow that does)."""
    hits = []
    for workflow in repo.workflows():
        proposes = re.search(r"gh\s+pr\s+create|create-pull-request|gh\s+workflow\s+run", workflow.text)
        trains = re.search(RUNS_PIPELINE, workflow.text) or "workflow_run" in workflow.triggers
        if proposes and trains:
            hits.append(
                repo.first_line(workflow.file, r"gh\s+pr\s+create|create-pull-request|gh\s+workflow\s+run")
            )
    return [h for h in hits if h is not None]


# --------------------------------------------------------------------------------- LLM evidence
def llm(repo: Repo) -> list[Hit]:
    """A language model that generates: an LLM client or framework imported, or a causal language
    model loaded (a classifier fine-tuned from BERT is machine learning, not an LLM application)."""
    return repo.grep(
        r"^\s*(from|import)\s+(openai|anthropic|langchain\w*|langgraph|llama_index|vllm|peft|litellm|ollama|"
        r"google\.genai|google\.adk|vertexai|mistralai|cohere|dspy)\b|AutoModelForCausalLM|[\"']text-generation[\"']",
        *CODE,
    )[:3]


def prompts_hardcoded(repo: Repo) -> list[Hit]:
    """Prompts written in the code: instructions to a model as string literals."""
    return repo.grep(
        r"[\"'](You are (a|an|the) |Answer the (question|following)|Use the following (context|pieces))",
        *CODE,
    )


def prompt_files(repo: Repo) -> list[Hit]:
    """Prompts versioned as files (a prompts folder of templates) or in a prompt registry."""
    templates = [
        f
        for f in repo.matching("prompts/*", "*/prompts/*", "*.prompt")
        if f.rsplit(".", 1)[-1] in ("txt", "md", "prompt", "jinja", "j2", "yaml", "yml", "json")
        and not f.endswith("README.md")
    ]
    hits = [Hit(f, 1, "a prompt template") for f in templates][:3]
    return (
        hits
        + repo.grep(
            r"register_prompt\(|load_prompt\(|hub\.pull\(|(push|pull)_prompt\(|PromptTemplate\.from_file",
            *CODE,
        )[:2]
    )


def prompt_ci(repo: Repo) -> list[Hit]:
    """Prompt CI/CD with A/B testing: prompt changes tested in CI and promoted by alias, and in
    production a challenger given a share of the traffic beside the champion, with a stated rule
    that decides between them from the outcomes."""
    tested = repo.grep(r"prompts?\b", *CODE, tests=True)
    aliased = repo.grep(r"set_prompt_alias\(|prompts:/\S*@|challenger|champion", *CODE)
    split = repo.grep(  # a request given to the challenger by a draw against its share
        r"\b(challenger|variant|treatment)\w*\s+if\s+.*<\s*[\w.]*(share|split|weight)|traffic_split\s*[=(]",
        *CODE,
    )
    decided = repo.grep(r"\b(p_better|prob\w*_better|sprt|sequential_test)\s*[=(]", *CODE)
    if not (tested and aliased and split and decided and ci_tests(repo)):
        return []
    return tested[:1] + aliased[:1] + split[:1] + decided[:1]


def retrieval(repo: Repo) -> list[Hit]:
    """Retrieval over an index: a vector store or an embedder imported or built (code that only
    says where an index would be opened is not one)."""
    return repo.grep(
        r"^\s*(from|import)\s+(faiss|qdrant_client|chromadb|lancedb|pgvector|pinecone|weaviate|"
        r"sentence_transformers)\b|\b(SentenceTransformer|HashingVectorizer|VectorStoreIndex)\(",
        *CODE,
    )[:2]


def index_in_pipeline(repo: Repo) -> list[Hit]:
    """The index rebuilt by the pipeline: a pipeline stage that writes it."""
    hits = []
    for file in repo.matching("dvc.yaml", "*/dvc.yaml"):
        hit = repo.first_line(file, r"^\s{2}(index|embed\w*|build_index)\s*:")
        if hit:
            hits.append(hit)
    return hits


def retrieval_gated(repo: Repo) -> list[Hit]:
    """Retrieval measured and held to a bound (hit rate, MRR, recall), refreshed on a schedule,
    and optimised continuously: its settings (chunking, top-k, embedders) swept on a schedule."""
    bound = repo.grep(r"\b(hit_at_k|hit_rate|mrr|recall_at_\w+|ndcg\w*)\s*:\s*\{?\s*(min|max)", *CONFIG)
    refreshed = _steps(repo, f"{RUNS_PIPELINE}|drift", {"schedule"})
    swept = _steps(repo, r"\b(rag-sweep|sweep|optuna)\b", {"schedule"})
    return bound[:1] + refreshed[:1] + swept[:1] if bound and refreshed and swept else []


def guardrails(repo: Repo) -> list[Hit]:
    """Guardrails as code: a guardrails library or a policy of rails, and the service calling them
    (a personal-data scan of the training data alone is data governance, not a rail)."""
    policy = repo.grep(r"^\s*(from|import)\s+(llm_guard|nemoguardrails|guardrails)\b", *CODE)
    policy += [Hit(f, 1, "a guardrails policy") for f in repo.matching("guardrails/*.yaml", "*/rails/*.yml")]
    called = repo.grep(r"\bcheck_(input|output)\(|\bguard\w*\.(validate|scan)\(", *CODE)
    return policy[:2] + called[:1] if policy else []


def guardrails_gated(repo: Repo) -> list[Hit]:
    """Guardrails held to a gated attack set, and watched in production (their triggers monitored
    or wrongly blocked answers fed back)."""
    attacks = [
        Hit(f, 1, "an attack set") for f in repo.matching("*attack*.jsonl", "*attacks*.json*", "*jailbreak*")
    ]
    bound = repo.grep(
        r"\b(block_rate|blocked_share|attack\w*|injection\w*|jailbreak\w*)\s*:\s*\{?\s*(min|max)", *CONFIG
    )
    watched = repo.grep(r"guardrail\w*_(share|rate|triggers?)|wrongly_blocked|feedback", *CODE)
    return attacks[:1] + bound[:1] + watched[:1] if attacks and bound and watched else []


def llm_evaluation(repo: Repo) -> list[Hit]:
    """LLM evaluation as a suite: answers scored against references or by a judge."""
    return repo.grep(
        r"mlflow\.(genai\.)?evaluate\(|\bragas\b|\bdeepeval\b|promptfoo|\b(rouge|bleu|faithfulness|"
        r"answer_relevance)\b",
        *CODE,
    )[:2]


def llm_evaluation_gated(repo: Repo) -> list[Hit]:
    """LLM evaluation in the gate and continued in production: an answer metric bounded in the
    settings the gate reads, a gate that can fail, and scheduled monitoring."""
    bound = repo.grep(
        r"\b(rouge\w*|bleu|faithfulness|answer_\w+|judge_\w+|grounded\w*)\s*:\s*\{?\s*(min|max)", *CONFIG
    )
    return (
        bound[:1] + gate(repo)[:1] + monitoring(repo)[:1] if bound and gate(repo) and monitoring(repo) else []
    )


def cost_tracked(repo: Repo) -> list[Hit]:
    """Cost known per request: tokens counted and priced."""
    prices = [
        Hit(f, 1, "prices per token")
        for f in repo.matching("*prices*.yaml", "*pricing*.yaml", "*prices*.json")
    ]
    counted = repo.grep(
        r"(prompt|completion)_tokens.*(price|cost)|(price|cost)\w*.*(prompt|completion)_tokens", *CODE
    )
    return prices[:1] + counted[:1] if counted else []


def cost_optimised(repo: Repo) -> list[Hit]:
    """Cost optimised: answers reused by a (semantic) cache or requests routed to cheaper models;
    a budget alone only caps what is spent."""
    return repo.grep(
        r"semantic_?cache|SemanticCache|GPTCache|lru_cache\(.*(answer|completion)|\bRouter\(|"
        r"model_router|route_model",
        *CODE,
        *CONFIG,
    )[:2]


def request_log(repo: Repo) -> list[Hit]:
    """What the service answered, logged: a request log or traces."""
    return repo.grep(
        r"PredictionLog\(|request_log|audit_log|mlflow\.start_span\(|@mlflow\.trace|^\s*(from|import)\s+opentelemetry",
        *CODE,
    )[:2]


def audit(repo: Repo) -> list[Hit]:
    """A full audit trail: runs tied to their code and data, owners of what changes, a retention
    policy for what is logged, and each answer's lineage in a record that shows tampering (hash
    chained or signed)."""
    lineage = repo.grep(r"git_commit|dvc_lock|data_sha256|mlflow\.source\.git", *CODE)
    owners = [
        Hit(f, 1, "code owners") for f in repo.matching("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")
    ]
    retention = repo.grep(r"\bretention\w*\b", *CODE, *CONFIG)
    chained = repo.grep(  # each record holding the hash of the one before it
        r"[\"']prev(ious)?_?(hash)?[\"']\s*:\s*\w|\bdef\s+\w*(line|chain)_hash\(",
        *CODE,
    )
    if not (lineage and owners and retention and chained):
        return []
    return lineage[:1] + owners[:1] + retention[:1] + chained[:1]


EVIDENCE = {
    e.id: e
    for e in (
        Evidence("pipeline", "a versioned data pipeline with its lock", pipeline),
        Evidence("tracking", "experiment tracking called", tracking),
        Evidence("registry", "models registered", registry),
        Evidence("data_contract", "data contracts that run in CI", data_contract),
        Evidence("gate", "a gate that can fail", gate),
        Evidence("ci_tests", "tests run on every change", ci_tests),
        Evidence("continuous_training", "training run by automation", continuous_training),
        Evidence("delivery", "automated delivery", delivery),
        Evidence(
            "protected_production",
            "a protected production environment",
            protected_production,
            "its required reviewers live in GitHub's settings",
        ),
        Evidence("monitoring", "scheduled monitoring", monitoring),
        Evidence("retraining", "monitoring that can open a retraining change", retraining),
        Evidence("llm", "a language model in the project", llm),
        Evidence("prompts_hardcoded", "prompts written in the code", prompts_hardcoded),
        Evidence("prompt_files", "prompts versioned as files or in a registry", prompt_files),
        Evidence(
            "prompt_ci", "prompt changes tested, promoted by alias and A/B-tested in production", prompt_ci
        ),
        Evidence("retrieval", "retrieval over an index", retrieval),
        Evidence("index_in_pipeline", "the index rebuilt by the pipeline", index_in_pipeline),
        Evidence("retrieval_gated", "retrieval gated and refreshed on a schedule", retrieval_gated),
        Evidence("guardrails", "guardrails as code", guardrails),
        Evidence("guardrails_gated", "guardrails gated on attacks and watched", guardrails_gated),
        Evidence("llm_evaluation", "LLM evaluation as a suite", llm_evaluation),
        Evidence(
            "llm_evaluation_gated", "LLM evaluation gated and continued in production", llm_evaluation_gated
        ),
        Evidence("cost_tracked", "cost tracked per request", cost_tracked),
        Evidence(
            "cost_optimised", "cost optimised by a cache of answers or routing between models", cost_optimised
        ),
        Evidence("request_log", "requests logged or traced", request_log),
        Evidence("audit", "a full audit trail", audit),
    )
}


def collect(repo: Repo) -> dict[str, list[Hit]]:
    """Every check's lines (empty: not found)."""
    return {name: evidence.check(repo) for name, evidence in EVIDENCE.items()}
