"""A small support router outside banking, trained once per session on the packaged MiniLM."""

from __future__ import annotations

import pytest

SUPPORT = {
    "intents": [
        {
            "name": "track_order",
            "examples": [
                "where is my order",
                "track my package",
                "my parcel has not arrived yet",
                "when will my delivery come",
                "has my order shipped",
                "what is the tracking number of my order",
                "the package is late, where is it",
                "order status please",
            ],
            "target": {"model": "strong", "tiers": [{"model": "cheap", "max_difficulty": 0.3}]},
        },
        {
            "name": "return_item",
            "examples": [
                "I want to return these shoes",
                "how do I send an item back",
                "can I get a refund for a product",
                "the jacket does not fit, I'd like to return it",
                "start a return",
                "return policy for damaged goods",
                "I received the wrong item and want to send it back",
                "how long do I have to return something",
            ],
            "target": {"url": "https://help.example.com/returns"},
        },
        {
            "name": "reset_password",
            "examples": [
                "I forgot my password",
                "reset my password",
                "I can't log in to my account",
                "password reset link not working",
                "how do I change my password",
                "locked out of my account",
                "my login does not work anymore",
                "send me a new password",
            ],
            "target": {"reply": "Use 'Forgot password' on the sign-in page."},
        },
        {
            "name": "opening_hours",
            "examples": [
                "when are you open",
                "what are your opening hours",
                "is the store open on sunday",
                "what time do you close today",
                "are you open on public holidays",
                "business hours",
                "until when is the shop open",
                "opening times of the store",
            ],
            "target": {"reply": "We are open 9am to 6pm, Monday to Saturday."},
        },
        {
            "name": "complaint",
            "examples": [
                "I want to speak to a manager",
                "this is unacceptable, I want to file a complaint",
                "your service is terrible",
                "let me talk to a real person",
                "I am very unhappy with how I was treated",
                "connect me to a human agent",
                "I want to complain about an employee",
                "escalate my case please",
            ],
            "target": {"human": {"queue": "complaints", "reply": "A colleague will contact you today."}},
        },
    ],
    "out_of_scope": {
        "target": {"reply": "I can only help with orders, returns and your account."},
        "examples": ["tell me a joke", "what is the capital of france", "write a poem about the sea"],
    },
}


@pytest.fixture(scope="session")
def embedder():
    from embeddings import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def support_router(embedder):
    from router.intent import parse_definition, train

    return train("support", 1, parse_definition(SUPPORT), embedder.embed, embedder.name)


@pytest.fixture(scope="session")
def decide(support_router, embedder):
    def run(text: str, router=None):
        r = router or support_router
        return r.decide(embedder.embed([text])[0], text)

    return run
