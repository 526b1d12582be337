"""Generation: answers from the base model (with the LoRA adapter, when there is one) or an endpoint.

``model.provider`` in ``params.yaml``:

- ``local``: transformers on this machine (``model.base``, see ``base.py``), greedy when
  ``generation.temperature`` is 0, so evaluation is reproducible. On a CPU torch uses its own
  number of threads (one per physical core); ``TORCH_THREADS`` sets another, e.g. 1 where other
  jobs share the cores.
- ``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, a hosted API) at
  ``model.endpoint``, asked for ``model.base``; the key, if it needs one, comes from
  ``OPENAI_API_KEY``. A fine-tuned adapter is evaluated locally (it needs the weights).

A prompt goes through the model's chat template when its tokenizer has one (instruct models),
as plain text otherwise: training (``finetune.py``) formats it with the same function.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import GateError
from . import structured


def torch_device() -> str:
    """The device to run on: the GPU when there is one; on a CPU, ``TORCH_THREADS`` threads when
    it is set (torch's own choice otherwise)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    threads = os.environ.get("TORCH_THREADS", "").strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise GateError(f"TORCH_THREADS: {threads!r} is not a number of threads (1 or more)")
        torch.set_num_threads(int(threads))
    return "cpu"


@dataclass(frozen=True)
class Asked:
    """What one request asks of a generator beyond its prompt (None: the project's setting)."""

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None  # an upstream server's; the local model has none
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = None  # json_object / json_schema (structured.py)
    tools: Any = None  # the tools offered (chat/tools.Offered): an engine that calls tools gets them


ROLE_AS = {"developer": "system", "tool": "user"}  # roles chat templates know


def conversation(prompt) -> list[dict[str, str]]:
    """``prompt`` as chat messages: a text is one user message; messages stay as they are."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def as_text(tokenizer, prompt) -> str:
    """The prompt (a text, or a conversation's messages) as the model expects it: through its chat
    template when it has one, as ``role: text`` lines before the last message otherwise."""
    messages = conversation(prompt)
    if getattr(tokenizer, "chat_template", None):
        shaped = [{"role": ROLE_AS.get(m["role"], m["role"]), "content": m["content"]} for m in messages]
        return tokenizer.apply_chat_template(shaped, tokenize=False, add_generation_prompt=True)
    earlier = "".join(f"{m['role']}: {m['content']}\n" for m in messages[:-1])
    return earlier + messages[-1]["content"]


def examples(
    tokenizer, prompts: list[str], answers: list[str], max_length: int
) -> list[dict[str, list[int]]]:
    """Token ids and labels (-100 on the prompt) of each prompt + answer, at most ``max_length``
    tokens: a long prompt loses its start (the context), never the answer."""
    rows = []
    chat = bool(getattr(tokenizer, "chat_template", None))
    for prompt, answer in zip(prompts, answers, strict=True):
        head = tokenizer(as_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        tail = tokenizer(answer if chat else " " + answer, add_special_tokens=False)["input_ids"]
        tail = tail + [tokenizer.eos_token_id]
        ids, labels = head + tail, [-100] * len(head) + tail
        rows.append({"input_ids": ids[-max_length:], "labels": labels[-max_length:]})
    return rows


def answer_loss(model, batch: dict[str, Any]):
    """The mean negative log-likelihood of the answer tokens (``labels`` other than -100) and
    their number. Only the positions that predict an answer token go through the output layer:
    after a long retrieved context that is a tenth of the sequence, and the output layer over a
    real vocabulary is a fifth of the model's work (``logits_to_keep``; the whole sequence where
    the model does not take it)."""
    import torch

    labels = batch["labels"]
    wanted = labels[:, 1:] != -100
    count = int(wanted.sum())
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = wanted
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if _keeps_logits(model):
        logits = model(**inputs, logits_to_keep=keep).logits
        if logits.dim() == 2 and logits.shape[0] == count:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][wanted])
            return loss, count
    return model(**batch).loss, count


def _keeps_logits(model) -> bool:
    """Whether the model's forward takes a mask of the positions to compute logits for."""
    import inspect

    from transformers import modeling_utils

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return hasattr(modeling_utils, "slice_logits_to_keep") and (
        "logits_to_keep" in inspect.signature(inner.forward).parameters
    )


def load_local(model_source: str, adapter: str | None = None):
    """Tokenizer and model (with the adapter on top, not merged), in evaluation mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = torch_device()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_source)
        model = AutoModelForCausalLM.from_pretrained(model_source)
    except OSError as error:
        raise GateError(
            f"model.base: cannot load {model_source!r} ({error}); check the id or run once with network access"
        ) from None
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(device).eval()


class LocalGenerator:
    """Answers from transformers, in batches."""

    honours = frozenset({"response_format"})  # optional request parameters beyond Asked's common ones

    def __init__(self, model_source: str, generation: dict[str, Any], adapter: str | None = None):
        self.tokenizer, self.model = load_local(model_source, adapter)
        self.generation = generation
        self.adapter = adapter  # the adapter's folder (the audit trail digests it)

    @property
    def tuned(self) -> bool:
        """Whether a fine-tuned adapter is on the model (``base`` can switch it off)."""
        return hasattr(self.model, "disable_adapter")

    def base(self, switch_off: bool = True):
        """A block in which the model answers as the base model, the adapter switched off (with
        ``switch_off`` and an adapter; otherwise the model as it is)."""
        import contextlib

        return self.model.disable_adapter() if switch_off and self.tuned else contextlib.nullcontext()

    def __call__(self, prompts: list[str], adapter: bool = True) -> list[str]:
        """Answers to ``prompts``; ``adapter`` False: the base model's, with the adapter switched off."""
        with self.base(not adapter):
            return self._generate(prompts)

    def perplexity(self, prompts: list[str], answers: list[str], adapter: bool = True) -> float:
        """exp of the mean negative log-likelihood per token of ``answers`` after ``prompts``
        (formatted as fine-tuning formats them): how expected the reference answers are."""
        import math

        import torch

        rows = examples(self.tokenizer, prompts, answers, int(self.generation.get("max_length", 2048)))
        total, count = 0.0, 0
        with self.base(not adapter), torch.no_grad():
            for row in rows:
                ids = torch.tensor([row["input_ids"]], device=self.model.device)
                labels = torch.tensor([row["labels"]], device=self.model.device)
                loss, tokens = answer_loss(self.model, {"input_ids": ids, "labels": labels})
                total += float(loss) * tokens
                count += tokens
        return round(math.exp(total / max(count, 1)), 6)

    @property
    def context_tokens(self) -> int | None:
        """The most tokens the model attends to (prompt and answer)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def stream(self, prompt, asked: Asked | None = None, usage=None):
        """The answer to one prompt (a text or a conversation's messages) in pieces, as the model
        writes it (a worker thread generates). ``usage`` then holds ``tokens`` (generated) and
        ``finish``: ``length`` when the answer reached its token limit, else ``stop``; a stop
        sequence ends generation (the text still holds it: the caller cuts it)."""
        import threading

        import torch
        from transformers import TextIteratorStreamer

        asked = asked or Asked()
        tokenizer, settings = self.tokenizer, self.generation
        limit = int(asked.max_new_tokens or settings["max_new_tokens"])
        options = self._sampling(asked)
        if asked.stop:
            options.update(stop_strings=list(asked.stop), tokenizer=tokenizer)
        schema = structured.schema_of(asked.response_format) if asked.response_format else None
        if schema is not None:
            from transformers import LogitsProcessorList

            options["logits_processor"] = LogitsProcessorList([structured.processor(tokenizer, schema)])
        batch = tokenizer([as_text(tokenizer, prompt)], return_tensors="pt", add_special_tokens=False)
        batch = {k: v.to(self.model.device) for k, v in batch.items()}
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                if asked.seed is not None:
                    torch.manual_seed(asked.seed)
                with torch.no_grad():
                    out = self.model.generate(
                        **batch,
                        max_new_tokens=limit,
                        pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        streamer=streamer,
                        **options,
                    )
                new = out[0, batch["input_ids"].shape[1] :]
                result["tokens"] = int(new.shape[0])
                ended = new.shape[0] > 0 and int(new[-1]) == tokenizer.eos_token_id
                result["finish"] = "length" if new.shape[0] >= limit and not ended else "stop"
            except Exception as error:  # handed to the reader below
                result["error"] = error
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if "error" in result:
            raise result["error"]
        if usage is not None:
            usage["tokens"] = result.get("tokens", 0)
            usage["finish"] = result.get("finish", "stop")

    def _sampling(self, asked: Asked) -> dict[str, Any]:
        settings = self.generation
        temperature = float(
            settings.get("temperature", 0.0) if asked.temperature is None else asked.temperature
        )
        if temperature <= 0:
            return {"do_sample": False}
        options: dict[str, Any] = {"do_sample": True, "temperature": temperature}
        if asked.top_p is not None:
            options["top_p"] = float(asked.top_p)
        return options

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate(self, prompts: list[str]) -> list[str]:
        import torch

        tokenizer, settings = self.tokenizer, self.generation
        tokenizer.padding_side = "left"
        temperature = float(settings.get("temperature", 0.0))
        options = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        answers: list[str] = []
        size = int(settings.get("batch_size", 8))
        for start in range(0, len(prompts), size):
            texts = [as_text(tokenizer, p) for p in prompts[start : start + size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(self.model.device) for k, v in batch.items()}
            with torch.no_grad():
                out = self.model.generate(
                    **batch,
                    max_new_tokens=int(settings["max_new_tokens"]),
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **options,
                )
            new = out[:, batch["input_ids"].shape[1] :]
            answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
        return answers


class EndpointGenerator:
    """Answers from an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        generation: dict[str, Any],
        timeout: float = 60.0,
        tools: str = "constrained",
    ):
        """``tools``: how a request's tools reach the server (``serving.upstream_tools``):
        ``constrained``, as a ``response_format`` its calls must follow (any server that takes a
        JSON schema); ``native``, as its own ``tools`` (vLLM with a tool parser, and others), the
        calls it returns checked against the schemas here."""
        self.native_tools = tools == "native"
        if not endpoint:
            raise GateError(
                "model.endpoint: empty; give the server's base URL (e.g. http://127.0.0.1:8000/v1)"
            )
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.model, self.generation, self.timeout = model, generation, timeout
        self._openai = self._http = None
        self._headers: dict[str, str] = {}
        self._plain: bool | None = None  # see _direct
        self._local = None  # each thread's keep-alive connection

    def __call__(self, prompts: list[str], adapter: bool = True) -> list[str]:
        return [self._one(p) for p in prompts]

    def _client(self):
        """The ``openai`` client, built once; ``self._http`` is its transport (the SDK's default
        HTTP client, handed to it so that ``complete`` can send on it too)."""
        from openai import DefaultHttpxClient, OpenAI

        if self._openai is None:
            base_url = self.url.removesuffix("/chat/completions")
            key = os.environ.get("OPENAI_API_KEY") or "none"
            self._http = DefaultHttpxClient(timeout=self.timeout)
            self._openai = OpenAI(
                base_url=base_url, api_key=key, timeout=self.timeout, max_retries=1, http_client=self._http
            )
            headers = {**self._openai.default_headers, **self._openai.auth_headers}
            self._headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        return self._openai

    context_tokens = None  # the server's model: unknown here
    honours = frozenset({"presence_penalty", "frequency_penalty", "response_format"})

    def _request(self, prompt, asked: Asked | None) -> dict[str, Any]:
        asked = asked or Asked()
        default = self.generation.get("temperature", 0.0)
        request = {
            "model": self.model,
            "messages": conversation(prompt),
            "max_tokens": int(asked.max_new_tokens or self.generation["max_new_tokens"]),
            "temperature": float(default if asked.temperature is None else asked.temperature),
        }
        for name in ("top_p", "seed", "presence_penalty", "frequency_penalty", "response_format"):
            if getattr(asked, name) is not None:
                request[name] = getattr(asked, name)
        if asked.stop:
            request["stop"] = list(asked.stop)
        if asked.tools is not None and self.native_tools:
            request.pop("response_format", None)
            request.update(asked.tools.native())
        return request

    @property
    def _direct(self) -> bool:
        """An ``http://`` server that no proxy stands before (an engine in the same network): sent
        on a keep-alive connection of the standard library, half the cost of the client's own
        transport on every request of the service."""
        if self._plain is None:
            import urllib.request
            from urllib.parse import urlsplit

            parts = urlsplit(self.url)
            proxied = "http" in urllib.request.getproxies() and not urllib.request.proxy_bypass(
                parts.hostname or ""
            )
            self._plain = parts.scheme == "http" and not proxied
        return self._plain

    def _keep_alive(self, payload: bytes) -> dict[str, Any] | None:
        """The server's JSON answer through this thread's keep-alive connection (a new one when the
        server closed it); None when it answers anything but a 200."""
        import http.client
        import threading
        from urllib.parse import urlsplit

        import orjson

        if self._local is None:
            self._local = threading.local()
        parts = urlsplit(self.url)
        headers = {**self._headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
                self._local.connection = connection
            try:
                connection.request("POST", parts.path, payload, headers)
                response = connection.getresponse()
                data = response.read()
            except TimeoutError:
                raise
            except (OSError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
                continue
            return orjson.loads(data) if response.status == 200 else None
        return None

    def complete(self, prompt, asked: Asked | None = None, usage=None) -> str:
        """The whole answer to one prompt (a text or a conversation's messages) in one response. It
        is sent with the ``openai`` client's headers (its key included) and read as plain JSON, on a
        keep-alive connection (``_direct``) or the client's transport: a millisecond sooner than its
        request and response models, which the service would pay on every request. Anything but a
        200 is sent again through the client itself, for its retries and its wording of the error.
        ``usage`` gets the server's token counts and its ``finish`` reason."""
        import orjson
        from openai import OpenAIError

        request = self._request(prompt, asked)
        client = self._client()
        payload = orjson.dumps(request)
        try:
            if self._direct:
                answer = self._keep_alive(payload)
            else:
                reply = self._http.post(self.url, content=payload, headers=self._headers)
                answer = reply.json() if reply.status_code == 200 else None
        except Exception as error:  # the transport failed: refused, reset or timed out
            if any(kind.__name__ in ("TimeoutException", "TimeoutError") for kind in type(error).__mro__):
                raise GateError(f"the upstream server {self.url} timed out after {self.timeout} s") from None
            answer = None
        try:
            if answer is None:
                answer = client.chat.completions.create(**request).model_dump()
            choices = answer.get("choices") or []
            message = (choices[0].get("message") or {}) if choices else {}
            text = message.get("content") or ""
            if asked is not None and asked.tools is not None and self.native_tools and choices:
                text = asked.tools.from_native(message)  # the call checked, as constrained decoding writes it
        except OpenAIError as error:
            raise GateError(
                f"the upstream server {self.url} failed: {type(error).__name__}: {error}"
            ) from None
        except (ValueError, AttributeError, TypeError) as error:
            if asked is not None and asked.tools is not None and self.native_tools:
                raise GateError(f"the upstream server {self.url} made no valid tool call: {error}") from None
            raise GateError(f"the upstream server {self.url} answered no chat completion: {error}") from None
        counts = answer.get("usage") or {}
        if usage is not None and isinstance(counts, dict):
            usage["tokens"] = int(counts.get("completion_tokens") or 0)
            if counts.get("prompt_tokens"):
                usage["prompt_tokens"] = int(counts["prompt_tokens"])
        if usage is not None and choices and choices[0].get("finish_reason") == "length":
            usage["finish"] = "length"
        return str(text)

    def stream(self, prompt, asked: Asked | None = None, usage=None):
        """The answer to one prompt in pieces, streamed from the server through the ``openai`` client;
        ``usage`` then gets the server's token counts (when it sends them) and its ``finish`` reason."""
        from openai import OpenAIError

        if asked is not None and asked.tools is not None and self.native_tools:
            yield self.complete(prompt, asked, usage)  # a call is checked whole: one piece
            return
        try:
            chunks = self._client().chat.completions.create(
                **self._request(prompt, asked),
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in chunks:
                if chunk.usage is not None and usage is not None:
                    usage["tokens"] = int(chunk.usage.completion_tokens or 0)
                    if chunk.usage.prompt_tokens:
                        usage["prompt_tokens"] = int(chunk.usage.prompt_tokens)
                for choice in chunk.choices:
                    if choice.finish_reason == "length" and usage is not None:
                        usage["finish"] = "length"
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
        except OpenAIError as error:
            raise GateError(
                f"the upstream server {self.url} failed: {type(error).__name__}: {error}"
            ) from None

    def _one(self, prompt: str) -> str:
        import urllib.error
        import urllib.request

        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": int(self.generation["max_new_tokens"]),
            "temperature": float(self.generation.get("temperature", 0.0)),
        }
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise GateError(f"model.endpoint {self.url} did not answer ({error})") from None
        try:
            return str(answer["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError):
            raise GateError(
                f"model.endpoint {self.url}: not an OpenAI chat completion: {str(answer)[:120]}"
            ) from None


def generator(params: dict[str, Any], adapter: str | None = None, root=None):
    """The generator ``params.yaml`` asks for (local with ``adapter`` whenever there is one)."""
    from . import base

    model = params["model"]
    if model.get("provider", "local") == "openai" and adapter is None:
        return EndpointGenerator(model.get("endpoint", ""), model["base"], params["generation"])
    return LocalGenerator(base.source(params, root), params["generation"], adapter)
