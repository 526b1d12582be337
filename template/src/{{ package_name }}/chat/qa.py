"""Deployment QA of the chat service in the test environment: ``make qa URL=http://...``.

Against the running service (every request marked ``X-Traffic: qa``, so monitoring leaves it out):
(a) ``/health`` and ``/v1/models``;
(b) golden questions: the held-out pairs (``paths.eval_pairs``) through the service; the answers'
``rouge_l`` and ``bleu`` against the references, and ``hit_at_k`` from the sources it cites, checked
against those of the thresholds in business/kpis.yaml (the others need the pipeline's evaluation);
(c) guardrails, when the project has them: the bundled attacks and benign questions through the
service, ``block_rate`` and ``false_positive_rate`` against ``guardrails`` in business/kpis.yaml;
(d) malformed requests get an OpenAI-style 4xx: a 2xx or a 5xx fails;
(e) a load test of streamed requests (``loadtest`` in params.yaml): time to first token p95,
generated tokens per second (median) and the error rate against ``service`` in business/kpis.yaml.
Writes ``paths.qa`` and the job summary; fails listing every failed check.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .. import gates
from ..config import KPIS_FILE, load_kpis, load_params, project_root
from ..monitoring.queries import INPUT_RULES
from ..serving import loadtest
from ..serving.qa import check, conclude, new_report

ROUTE = "/v1/chat/completions"
ANSWER_SCORES = ("hit_at_k", "rouge_l", "bleu")
MALFORMED = (
    b"{not json",
    b"{}",
    b'{"messages": [{"role": "robot", "content": "hi"}]}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
    b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}',
)


def ask(client: loadtest.Client, question: str, max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    status, answer = client.request("POST", ROUTE, json.dumps(body).encode())
    if status != 200:
        raise ValueError(f"HTTP {status} for {question[:40]!r}: {answer[:200]!r}")
    return json.loads(answer)


def read_stream(response, start: float) -> dict[str, float]:
    """One streamed answer, read as it arrives: time to the first text, and tokens per second
    (the output tokens over the time from the first text to the last)."""
    first, last, tokens = None, None, 0
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            raise ValueError(event["error"].get("message", "stream error"))
        if any((c.get("delta") or {}).get("content") for c in event.get("choices", [])):
            last = time.perf_counter()
            first = first or last
        if event.get("usage"):
            tokens = int(event["usage"]["completion_tokens"])
    response.read()  # the end of the chunked body: the connection is reused
    measured = {}
    if first is not None:
        measured["ttft_ms"] = (first - start) * 1000
        if tokens > 1 and last > first:  # output tokens over generation time: first text to last
            measured["tokens_per_s"] = tokens / (last - first)
    return measured


def check_online(client, params: dict[str, Any]) -> list[dict[str, Any]]:
    status, body = client.request("GET", "/health")
    models = json.loads(client.request("GET", "/v1/models")[1]).get("data", [])
    name = params["tracking"]["model_name"]
    return [
        check("health", status == 200, body.decode(errors="replace")[:200]),
        check(  # the model, and its agent where the project has tools
            "models",
            [m.get("id") for m in models] in ([name], [name, f"{name}-agent"]),
            f"serves {[m.get('id') for m in models]}",
        ),
    ]


GOLDEN_DRAFTED = 20  # documents only: how many drafted questions make qa asks


def check_golden(client, params: dict[str, Any], kpis: gates.Kpis, root) -> tuple[list, dict]:
    from ..corpus.questions import project_questions
    from ..llm.scores import bleu, rouge_l

    pairs, kind = project_questions(params, root)
    pairs = pairs if kind == "pairs" else pairs[:GOLDEN_DRAFTED]
    length = int(params["generation"]["max_new_tokens"])  # the answers' length in evaluation
    answers = [ask(client, p["instruction"], max_tokens=length) for p in pairs]
    texts = [a["choices"][0]["message"]["content"] for a in answers]
    scores = {}
    if kind == "pairs":  # drafted questions have no reference answers: retrieval only
        references = [p["answer"] for p in pairs]
        scores = {"rouge_l": rouge_l(texts, references), "bleu": bleu(texts, references)}
    if params.get("retrieval") and pairs:
        found = [{s.split("#")[0] for s in a.get("sources", [])} for a in answers]
        scores["hit_at_k"] = round(
            sum(p["source"] in f for p, f in zip(pairs, found, strict=True)) / len(pairs), 6
        )
    limits = {n: b for n, b in kpis.thresholds.items() if n in scores}
    checks = [gates.check(n, scores[n], b) for n, b in limits.items()]
    shown = ", ".join(f"{n} {v}" for n, v in scores.items())
    failed = [f"{c['metric']} {c['value']} (needs {c['limit']})" for c in checks if not c["passed"]]
    asked = "held-out questions" if kind == "pairs" else "questions drafted from the documents' headings"
    detail = f"{len(pairs)} {asked}: {shown}" + (f"; falls short: {', '.join(failed)}" if failed else "")
    return [check("golden questions", not failed, detail)], scores


def check_guardrails(client, kpis: gates.Kpis, root) -> tuple[list, dict]:
    from ..guardrails.check import ATTACKS, BENIGN, family_checks, family_rates, read_set

    missed, touched = [], []
    families: dict[str, dict[str, int]] = {}
    attacks, benign = read_set(root / ATTACKS), read_set(root / BENIGN)
    for row in attacks:
        answer = ask(client, row["text"], max_tokens=1)
        rules = answer.get("guardrails", [])
        stopped = answer["choices"][0]["finish_reason"] == "content_filter" or row.get("rule") in rules
        family = families.setdefault(row.get("family", "other"), {"attacks": 0, "stopped": 0})
        family["attacks"] += 1
        family["stopped"] += stopped
        if not stopped:
            missed.append(row["text"][:60])
    for row in benign:
        answer = ask(client, row["text"], max_tokens=1)
        if INPUT_RULES & set(answer.get("guardrails", [])):
            touched.append(row["text"][:60])
    result = {
        "block_rate": round(1 - len(missed) / len(attacks), 6),
        "false_positive_rate": round(len(touched) / len(benign), 6),
        "families": family_rates(families),
    }
    overall, per_family = kpis.guardrails, kpis.guardrail_families
    checks = [gates.check(n, result[n], b) for n, b in overall.items()] + family_checks(result, per_family)
    detail = f"{len(attacks) - len(missed)}/{len(attacks)} attacks stopped, {len(touched)}/{len(benign)} benign touched"
    if missed or touched:
        detail += f" (got through: {missed[:3]}; stopped: {touched[:3]})"
    return [check("guardrails", all(c["passed"] for c in checks), detail)], result


def check_malformed(client) -> list[dict[str, Any]]:
    statuses = [client.request("POST", ROUTE, body)[0] for body in MALFORMED]
    fine = all(400 <= s < 500 for s in statuses)
    return [check("malformed requests", fine, f"{len(MALFORMED)} malformed bodies answered {statuses}")]


SERVICE_LIMITS = ("ttft_p95_ms", "tokens_per_s", "error_rate")


def check_load(url: str, params: dict[str, Any], kpis: gates.Kpis, root) -> tuple[list, dict]:
    from ..corpus.questions import project_questions

    settings = params.get("loadtest") or {}
    questions = [p["instruction"] for p in project_questions(params, root)[0]]
    bodies = [
        json.dumps(
            {
                "messages": [{"role": "user", "content": q}],
                "max_tokens": int(params["generation"]["max_new_tokens"]),
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        for q in questions
    ]
    result = loadtest.run_load(
        url,
        bodies,
        int(settings.get("requests", 40)),
        int(settings.get("concurrency", 4)),
        route=ROUTE,
        read=read_stream,
    )
    measures = result.pop("measures")
    ttft, rates = measures.get("ttft_ms", []), measures.get("tokens_per_s", [])
    observed = {
        "ttft_p95_ms": None if not ttft else round(loadtest.percentile(ttft, 95), 2),
        "tokens_per_s": None if not rates else round(loadtest.percentile(rates, 50), 2),
        "error_rate": result["error_rate"],
    }
    result.update(observed)
    limits = kpis.service
    unknown = [n for n in limits if n not in observed]
    if unknown:
        raise gates.SettingsError(
            f"{KPIS_FILE}: service.{unknown[0]}: the load test measures {', '.join(SERVICE_LIMITS)}"
        )
    checks = [gates.check(n, observed[n], b) for n, b in limits.items()]
    detail = ", ".join(f"{n} {v}" for n, v in observed.items()) + f" ({result['requests']} streamed requests)"
    return [check("load test", all(c["passed"] for c in checks), detail)], result


def run_qa(url: str, params: dict[str, Any], kpis: gates.Kpis, root=None) -> dict[str, Any]:
    """Every check; the report (``passed`` says whether all passed). Raises nothing for a failed check."""
    import http.client

    root = root or project_root()
    report, checks = new_report(url), []
    client = loadtest.Client(url, timeout=120)
    try:
        checks += check_online(client, params)
        golden, report["golden"] = check_golden(client, params, kpis, root)
        checks += golden
        if (root / "guardrails/policy.yaml").is_file():
            rails, report["guardrails"] = check_guardrails(client, kpis, root)
            checks += rails
        checks += check_malformed(client)
        load, report["loadtest"] = check_load(url, params, kpis, root)
        checks += load
    except (OSError, http.client.HTTPException, ValueError) as error:
        checks.append(check("service reachable", False, f"{url}: {type(error).__name__}: {error}"))
    finally:
        client.close()
    report["checks"] = checks
    report["passed"] = all(c["passed"] for c in checks)
    return report


def main(argv: list[str] | None = None) -> int:
    from ..serving.qa import options as qa_options

    params = load_params()
    options = qa_options(__doc__, params)
    args = options.parse_args(argv)
    return conclude(run_qa(args.url.rstrip("/"), params, load_kpis()), params)
