"""The vLLM emulator, driven through HTTP with the official ``openai`` SDK and raw httpx where the wire matters."""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest
from click.testing import CliRunner

from interlock.emulator import EmulatorServer, chat_prompt_tokens, text_tokens
from interlock.emulator.command import emulator as emulator_command
from tests.support.polling import eventually as wait_until
from tests.support.servers import free_port

MSG = [{"role": "user", "content": "hello there friend"}]
ECHO_16 = " ".join((["hello", "there", "friend"] * 6)[:16])


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(served_model_names=["m", "alias"], max_num_seqs=2, kv_cache_tokens=1000) as emu:
        yield emu


@pytest.fixture
def emu(server: EmulatorServer) -> EmulatorServer:
    server.reset()
    return server


def sdk(emu: EmulatorServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.base_url, api_key="unused", max_retries=0, **kw)


def post(emu: EmulatorServer, path: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(emu.url + path, json=body, headers=headers, timeout=10)


def sse_events(emu: EmulatorServer, path: str, body: dict) -> list[dict | str]:
    """The ``data:`` payloads of a streamed answer, parsed; ``[DONE]`` stays a string."""
    text = post(emu, path, body).text
    assert text.endswith("data: [DONE]\n\n")
    events = [block.removeprefix("data: ") for block in text.split("\n\n") if block]
    return [e if e == "[DONE]" else orjson.loads(e) for e in events]


def gauge(emu: EmulatorServer, name: str, labels: str = "") -> float:
    prefix = f'{name}{{model_name="m",engine="0"{labels}}} '
    line = next(line for line in emu.metrics().splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


# -- responses ------------------------------------------------------------------------------------------


def test_when_chat_is_not_streamed_then_the_body_has_vllms_shape_and_echoes_the_prompt(emu):
    body = post(emu, "/v1/chat/completions", {"model": "m", "messages": MSG}).json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "m"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == ECHO_16
    assert (choice["index"], choice["finish_reason"], choice["stop_reason"], choice["logprobs"]) == (
        0,
        "stop",
        None,
        None,
    )
    prompt = chat_prompt_tokens(MSG)
    assert body["usage"] == {
        "prompt_tokens": prompt,
        "total_tokens": prompt + 16,
        "completion_tokens": 16,
        "prompt_tokens_details": None,
    }
    assert "kv_transfer_params" in body and "prompt_token_ids" in body


def test_when_a_served_alias_is_asked_for_then_vllm_answers_with_the_first_served_name(emu):
    assert sdk(emu).chat.completions.create(model="alias", messages=MSG).model == "m"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_when_the_token_limit_is_below_the_natural_length_then_finish_reason_is_length(emu, field):
    answer = sdk(emu).chat.completions.create(model="m", messages=MSG, **{field: 4})
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "hello there friend hello"
    assert answer.usage.completion_tokens == 4


def test_when_n_is_three_then_three_different_choices_come_back(emu):
    answer = sdk(emu).chat.completions.create(model="m", messages=MSG, n=3, max_tokens=2)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert len({c.message.content for c in answer.choices}) == 3
    assert answer.usage.completion_tokens == 6


def test_when_a_stop_string_is_hit_then_text_ends_before_it_and_stop_reason_names_it(emu):
    answer = sdk(emu).chat.completions.create(model="m", messages=MSG, stop=["friend"])
    choice = answer.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("hello there ", "stop")
    assert choice.model_extra["stop_reason"] == "friend"
    assert answer.usage.completion_tokens == 3  # the token that completed the match counts


def test_when_a_seed_is_given_then_output_is_repeatable_and_depends_on_the_seed(emu):
    def say(seed: int) -> str:
        return sdk(emu).chat.completions.create(model="m", messages=MSG, seed=seed).choices[0].message.content

    assert say(7) == say(7)
    assert say(7) != say(8)


def test_when_a_reply_header_is_sent_then_the_model_says_exactly_that(emu):
    answer = sdk(emu).chat.completions.create(
        model="m", messages=MSG, extra_headers={"x-emulator-reply": "My card is 4111 1111 1111 1111."}
    )
    assert answer.choices[0].message.content == "My card is 4111 1111 1111 1111."
    assert answer.usage.completion_tokens == 7


CALL = {"name": "book_table", "arguments": '{"name": "Ana Lima", "phone": "212-555-0199"}'}


def test_when_a_reply_is_scripted_with_tool_calls_then_the_answer_calls_them_as_vllm_does(emu):
    emu.script_replies({"tool_calls": [CALL, {"name": "noop", "arguments": {}}]})
    answer = sdk(emu).chat.completions.create(model="m", messages=MSG)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls
    assert [(c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("function", "book_table", CALL["arguments"]),
        ("function", "noop", "{}"),
    ]
    assert calls[0].id.startswith("chatcmpl-tool-") and calls[0].id != calls[1].id


def test_when_scripted_tool_calls_stream_then_the_sdk_joins_the_argument_pieces(emu):
    emu.script_replies({"text": "Booking.", "tool_calls": [CALL]})
    chunks = list(sdk(emu).chat.completions.create(model="m", messages=MSG, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Booking."
    pieces = [t for d in deltas for t in d.tool_calls or ()]
    first, rest = pieces[0], pieces[1:]
    assert (first.index, first.type, first.function.name) == (0, "function", "book_table") and first.id
    assert len(rest) > 3 and all(t.id is None and t.function.name is None for t in rest)  # arguments in pieces
    assert "".join(t.function.arguments or "" for t in pieces) == CALL["arguments"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_when_a_reply_is_scripted_per_choice_then_each_choice_says_its_own_text_streamed_or_not(emu):
    texts = ["First choice here.", "The second one is longer than the first."]
    emu.script_replies({"choices": texts}, {"choices": texts})
    whole = sdk(emu).chat.completions.create(model="m", messages=MSG, n=2)
    assert [c.message.content for c in sorted(whole.choices, key=lambda c: c.index)] == texts
    chunks = list(sdk(emu).chat.completions.create(model="m", messages=MSG, n=2, stream=True))
    streamed = {0: "", 1: ""}
    for c in chunks:
        for choice in c.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert list(streamed.values()) == texts
    order = [c.choices[0].index for c in chunks if c.choices and c.choices[0].delta.content]
    assert order[:4] == [0, 1, 0, 1]  # one choice per chunk, interleaved token by token as vLLM sends them
    emu.script_replies({"choices": [["Fir", "st ch", "oice."], texts[1]]})
    chunks = list(sdk(emu).chat.completions.create(model="m", messages=MSG, n=2, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].index == 0]
    assert [p for p in pieces if p] == ["Fir", "st ch", "oice."]  # a text given in pieces streams in those


def test_when_an_x_request_id_is_sent_then_it_becomes_the_response_id(emu):
    body = post(emu, "/v1/chat/completions", {"messages": MSG}, **{"x-request-id": "abc123"}).json()
    assert body["id"] == "chatcmpl-abc123"


def test_when_chat_is_streamed_then_chunks_follow_vllm_role_tokens_finish_usage_done(emu):
    events = sse_events(
        emu,
        "/v1/chat/completions",
        {"model": "m", "messages": MSG, "stream": True, "max_tokens": 3, "stream_options": {"include_usage": True}},
    )
    first, *tokens, usage_chunk, done = events
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [t["choices"][0]["delta"]["content"] for t in tokens] == ["hello", " there", " friend"]
    assert [t["choices"][0]["finish_reason"] for t in tokens] == [None, None, "length"]
    assert "stop_reason" in tokens[-1]["choices"][0]
    assert all("usage" not in e for e in [first, *tokens])  # vLLM sends exclude_unset chunks
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": chat_prompt_tokens(MSG),
        "total_tokens": chat_prompt_tokens(MSG) + 3,
        "completion_tokens": 3,
    }
    assert len({e["id"] for e in [first, *tokens, usage_chunk]}) == 1
    assert done == "[DONE]"


def test_when_stream_options_are_absent_then_no_usage_chunk_is_sent(emu):
    events = sse_events(emu, "/v1/chat/completions", {"model": "m", "messages": MSG, "stream": True})
    assert all(e == "[DONE]" or e["choices"] for e in events)


def test_when_streamed_with_the_sdk_then_the_text_matches_the_unstreamed_answer(emu):
    stream = sdk(emu).chat.completions.create(
        model="m", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ECHO_16
    assert chunks[-1].usage.completion_tokens == 16


def test_when_a_completion_is_asked_then_text_continues_the_prompt(emu):
    answer = sdk(emu).completions.create(model="m", prompt="one two", max_tokens=3)
    assert answer.id.startswith("cmpl-")
    assert answer.choices[0].text == " one two one"
    assert (answer.choices[0].finish_reason, answer.usage.prompt_tokens) == ("length", text_tokens("one two"))


def test_when_completions_default_max_tokens_then_it_is_vllms_16(emu):
    answer = sdk(emu).completions.create(model="m", prompt="one two", extra_headers={"x-emulator-output-tokens": "50"})
    assert (answer.usage.completion_tokens, answer.choices[0].finish_reason) == (16, "length")


def test_when_a_completion_is_streamed_then_chunks_carry_usage_null_and_a_usage_chunk_ends_it(emu):
    events = sse_events(
        emu,
        "/v1/completions",
        {"model": "m", "prompt": "one two", "max_tokens": 2, "stream": True, "stream_options": {}},
    )
    *tokens, usage_chunk, done = events
    assert [t["choices"][0]["text"] for t in tokens] == [" one", " two"]
    assert all(t["usage"] is None and t["object"] == "text_completion" for t in tokens)
    assert usage_chunk["usage"]["completion_tokens"] == 2  # stream_options alone turns usage on, as in vLLM
    assert done == "[DONE]"


def test_when_embeddings_are_asked_then_vectors_are_unit_length_and_deterministic(emu):
    client = sdk(emu)
    first = client.embeddings.create(model="m", input=["cat", "dog"])  # the SDK asks for base64
    again = client.embeddings.create(model="m", input="cat", encoding_format="float")
    cat, dog = first.data[0].embedding, first.data[1].embedding
    assert len(cat) == 384
    assert math.isclose(sum(v * v for v in cat), 1.0, rel_tol=1e-5)
    assert again.data[0].embedding == pytest.approx(cat, abs=1e-6)
    assert cat != pytest.approx(dog, abs=1e-3)
    assert first.usage.prompt_tokens == 2 and first.usage.total_tokens == 2


def test_when_embeddings_are_asked_in_base64_then_the_raw_body_is_little_endian_float32(emu):
    body = post(emu, "/v1/embeddings", {"input": "cat", "encoding_format": "base64", "dimensions": 8}).json()
    assert body["id"].startswith("embd-") and body["object"] == "list"
    vector = struct.unpack("<8f", base64.b64decode(body["data"][0]["embedding"]))
    assert math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-5)


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("messages", [[[]], [{"role": "user", "content": "hi"}, "hi"]])
def test_when_chat_style_embeddings_have_a_message_that_is_no_object_then_400_not_a_crash(emu, messages):
    response = post(emu, "/v1/embeddings", {"input": "hi", "messages": messages})
    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]


def test_when_the_model_is_unknown_then_404_in_vllms_error_shape(emu):
    with pytest.raises(openai.NotFoundError) as err:
        sdk(emu).chat.completions.create(model="nope", messages=MSG)
    assert err.value.response.json() == {
        "error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": "hi"}', None),
        (b'{"messages": [], "n": 0}', None),
        (b'{"messages": [], "stream_options": {"include_usage": true}}', "stream_options"),
        (b'{"messages": [], "max_tokens": 9000}', "max_tokens"),
    ],
)
def test_when_the_body_is_invalid_then_400_with_vllms_error_body(emu, body, param):
    response = httpx.post(emu.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (400, param)
    assert error["type"] in ("Bad Request", "BadRequestError")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": "hi", "logprobs": 2**63 - 1}),
        ("/v1/completions", {"prompt": "hi", "logprobs": 21}),
        ("/v1/chat/completions", {"messages": MSG, "logprobs": True, "top_logprobs": 2**40}),
    ],
)
def test_when_more_logprobs_than_max_logprobs_are_asked_then_400_not_a_hang(emu, path, body):
    response = post(emu, path, body)
    assert response.status_code == 400
    assert "greater than max allowed: 20" in response.json()["error"]["message"]


def test_when_logprobs_are_within_max_logprobs_then_each_token_has_that_many(emu):
    choice = post(emu, "/v1/completions", {"prompt": "hi", "logprobs": 20, "max_tokens": 2}).json()["choices"][0]
    assert [len(top) for top in choice["logprobs"]["top_logprobs"]] == [20, 20]


def test_when_the_content_type_is_not_json_then_400(emu):
    response = httpx.post(emu.url + "/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert "application/json" in response.json()["error"]["message"]


def test_when_plain_routes_are_called_then_they_answer_like_vllm(emu):
    health = httpx.get(emu.url + "/health")
    assert (health.status_code, health.content) == (200, b"")
    assert "version" in httpx.get(emu.url + "/version").json()
    models = sdk(emu).models.list().data
    assert [m.id for m in models] == ["m", "alias"]
    assert models[0].owned_by == "vllm" and models[0].model_extra["max_model_len"] == 8192
    assert httpx.get(emu.url + "/nope").status_code == 404


def test_when_set_unhealthy_then_health_answers_503(emu):
    emu.set_healthy(False)
    assert httpx.get(emu.url + "/health").status_code == 503
    emu.set_healthy(True)
    assert httpx.get(emu.url + "/health").status_code == 200


# -- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("status:503", openai.InternalServerError, 503),
        ("status:500", openai.InternalServerError, 500),
        ("status:429", openai.RateLimitError, 429),
    ],
)
def test_when_a_status_fault_is_injected_then_that_status_comes_with_a_vllm_error_body(emu, fault, error, status):
    with pytest.raises(error) as err:
        sdk(emu).chat.completions.create(model="m", messages=MSG, extra_headers={"x-emulator-fault": fault})
    assert err.value.status_code == status
    assert err.value.response.json()["error"]["code"] == status
    if status == 429:
        assert err.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize("stream", [False, True])
def test_when_garbage_is_injected_then_the_sdk_cannot_parse_the_answer(emu, stream):
    with pytest.raises(ValueError):  # json.JSONDecodeError is a ValueError
        answer = sdk(emu).chat.completions.create(
            model="m", messages=MSG, stream=stream, extra_headers={"x-emulator-fault": "garbage"}
        )
        if stream:
            list(answer)


@pytest.mark.parametrize("stream", [False, True])
def test_when_reset_is_injected_then_the_connection_drops_without_an_answer(emu, stream):
    with pytest.raises(openai.APIConnectionError):
        sdk(emu).chat.completions.create(
            model="m", messages=MSG, stream=stream, extra_headers={"x-emulator-fault": "reset"}
        )


@pytest.mark.parametrize("after", [0, 3])
def test_when_a_stream_is_cut_then_k_tokens_arrive_and_then_an_error_without_done(emu, after):
    tokens = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        stream = sdk(emu).chat.completions.create(
            model="m", messages=MSG, stream=True, extra_headers={"x-emulator-fault": f"cut:{after}"}
        )
        for chunk in stream:
            tokens += [chunk.choices[0].delta.content] if chunk.choices[0].delta.content else []
    assert len(tokens) == after
    assert emu.stats()["cancelled"] == 0  # the drop was the server's, not the client's


def test_when_a_non_streamed_answer_is_cut_then_the_client_sees_a_broken_body(emu):
    with pytest.raises(httpx.HTTPError):
        post(emu, "/v1/chat/completions", {"messages": MSG}, **{"x-emulator-fault": "cut"})


def test_when_hang_is_injected_then_the_client_times_out_and_the_request_counts_as_cancelled(emu):
    with pytest.raises(openai.APITimeoutError):
        sdk(emu, timeout=0.3).chat.completions.create(
            model="m", messages=MSG, extra_headers={"x-emulator-fault": "hang"}
        )
    assert wait_until(lambda: emu.stats()["cancelled"] == 1)
    assert emu.stats()["in_flight"] == 0


def test_when_faults_are_scripted_then_the_next_requests_fail_in_order_and_then_succeed(emu):
    emu.script_faults("status:503", 2)
    post(emu, "/emulator/faults", {"faults": ["status:429:3"]})
    statuses = [post(emu, "/v1/chat/completions", {"messages": MSG}).status_code for _ in range(4)]
    assert statuses == [503, 503, 429, 200]


def test_when_a_request_says_no_fault_then_scripted_faults_wait_for_the_next_one(emu):
    emu.script_faults("status:503", 1)
    assert post(emu, "/v1/chat/completions", {"messages": MSG}, **{"x-emulator-fault": "none"}).status_code == 200
    assert post(emu, "/v1/chat/completions", {"messages": MSG}).status_code == 503


def test_when_scripted_faults_are_cleared_then_requests_succeed(emu):
    emu.script_faults("status:503", 5)
    emu.clear_faults()
    assert post(emu, "/v1/chat/completions", {"messages": MSG}).status_code == 200


def test_when_a_fault_spec_is_bad_then_400(emu):
    assert post(emu, "/v1/chat/completions", {"messages": MSG}, **{"x-emulator-fault": "explode"}).status_code == 400
    assert post(emu, "/emulator/faults", {"fault": "status:99"}).status_code == 400


# -- state: metrics, records, cancellation ------------------------------------------------------------


def test_when_requests_are_in_flight_then_metrics_show_running_waiting_and_kv_usage(emu):
    slow = {"x-emulator-ttft-ms": "800"}
    threads = [
        threading.Thread(target=lambda: post(emu, "/v1/chat/completions", {"messages": MSG}, **slow)) for _ in range(3)
    ]
    for t in threads:
        t.start()
    assert wait_until(lambda: gauge(emu, "vllm:num_requests_waiting") == 1.0)
    assert gauge(emu, "vllm:num_requests_running") == 2.0  # max_num_seqs=2
    # Two running requests reserve prompt + 16 output tokens each, over a 1000-token cache.
    assert gauge(emu, "vllm:kv_cache_usage_perc") == pytest.approx(2 * (chat_prompt_tokens(MSG) + 16) / 1000)
    for t in threads:
        t.join()
    assert (gauge(emu, "vllm:num_requests_running"), gauge(emu, "vllm:num_requests_waiting")) == (0.0, 0.0)
    assert gauge(emu, "vllm:kv_cache_usage_perc") == 0.0
    assert gauge(emu, "vllm:generation_tokens_total") == 48.0
    assert gauge(emu, "vllm:prompt_tokens_total") == 3.0 * chat_prompt_tokens(MSG)
    assert gauge(emu, "vllm:request_success_total", ',finished_reason="stop"') == 3.0


def test_when_requests_arrive_then_their_bodies_and_headers_are_recorded_untouched(emu):
    body = {
        "model": "m",
        "messages": MSG,
        "temperature": 0.3,
        "top_p": 0.9,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "guided_json": {"type": "object"},
        "extra_vendor_field": [1, 2],
    }
    post(emu, "/v1/chat/completions", body, **{"x-trace": "t1"})
    (recorded,) = emu.recorded_requests()
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["body"] == body
    assert recorded["headers"]["x-trace"] == "t1"


def test_when_the_client_drops_a_stream_then_generation_stops_and_is_counted_as_cancelled(emu):
    body = {"messages": MSG, "stream": True, "max_tokens": 200}
    headers = {"x-emulator-tpot-ms": "20", "x-emulator-output-tokens": "200"}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", emu.url + "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        next(response.iter_raw())
    assert wait_until(lambda: emu.stats()["cancelled"] == 1)
    stats = emu.stats()
    assert stats["in_flight"] == 0 and stats["finished"]["abort"] == 1
    assert stats["generation_tokens"] < 200
    assert gauge(emu, "vllm:num_requests_running") == 0.0


def test_when_the_client_gives_up_on_a_delayed_answer_then_it_is_counted_as_cancelled(emu):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            emu.url + "/v1/chat/completions",
            json={"messages": MSG},
            headers={"x-emulator-ttft-ms": "3000"},
            timeout=0.2,
        )
    assert wait_until(lambda: emu.stats()["cancelled"] == 1)


# -- processes and CLI --------------------------------------------------------------------------------


def test_when_run_in_a_thread_then_it_serves_too():
    with EmulatorServer(mode="thread", served_model_names=["t"]) as emu:
        assert sdk(emu).chat.completions.create(model="t", messages=MSG).choices[0].message.content == ECHO_16


def test_when_the_cli_gets_a_bad_fault_then_it_refuses_to_start():
    result = CliRunner().invoke(emulator_command, ["--fault", "explode"])
    assert result.exit_code == 2
    assert "bad fault spec" in result.output


def test_when_started_from_the_cli_then_it_serves_the_named_model():
    port = free_port()
    command = [sys.executable, "-m", "interlock.cli", "emulator", "--port", str(port), "--served-model-name", "cli"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/health").status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, 15)
        assert httpx.get(url + "/v1/models").json()["data"][0]["id"] == "cli"
    finally:
        proc.terminate()
        proc.wait(10)
