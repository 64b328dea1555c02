import pytest
from datasets import Dataset

from tests.helpers import GENERAL_ROWS, TWIN_ROWS
from twinsft.data.alpaca import ALPACA
from twinsft.data.formatting import held_out_rows, render_alpaca, split_dataset
from twinsft.data.hashing import content_hash

EXPECTED = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\nSay hi.\n\n### Response:\nHi!</s>"
)


def test_alpaca_text_is_the_reference_template_with_eos():
    ds = Dataset.from_list([{"instruction": "Say hi.", "output": "Hi!", "source": "x"}])
    out = render_alpaca(ds, eos_token="</s>")
    assert out.column_names == ["text"]
    assert out[0]["text"] == EXPECTED


def test_inference_prompt_is_the_training_text_up_to_the_response():
    assert EXPECTED.startswith(ALPACA.prompt("Say hi."))
    assert ALPACA.prompt("Say hi.").endswith("### Response:\n")


def test_training_text_splits_back_after_the_first_response_marker():
    """What `training.loss_on: response` cuts: the inference prompt, then the response with its EOS."""
    assert ALPACA.split_training_text(EXPECTED) == (ALPACA.prompt("Say hi."), "Hi!</s>")
    quoting = ALPACA.training_text("Show the format.", "It ends with ### Response:\nthen the answer.", "</s>")
    assert ALPACA.split_training_text(quoting) == (ALPACA.prompt("Show the format."),
                                                   "It ends with ### Response:\nthen the answer.</s>")
    with pytest.raises(ValueError, match="no response marker"):
        ALPACA.split_training_text("plain text</s>")


def test_formatted_text_tokenizes_to_end_with_the_eos_id(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = render_alpaca(Dataset.from_list([{"instruction": "Say hi.", "output": "Hi!"}]), eos_token=tok.eos_token)
    assert tok(ds[0]["text"], add_special_tokens=False)["input_ids"][-1] == tok.eos_token_id


def test_chat_template_renders_the_training_prompt(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = ALPACA.chat_template()
    messages = [{"role": "user", "content": "Say hi."}]
    assert tok.apply_chat_template(messages, tokenize=False) == ALPACA.prompt("Say hi.")


def test_split_is_seeded_and_disjoint():
    ds = Dataset.from_list([{"text": f"row {i}"} for i in range(100)])
    train, test = split_dataset(ds, test_size=0.05, seed=0)
    again, _ = split_dataset(ds, test_size=0.05, seed=0)
    other, _ = split_dataset(ds, test_size=0.05, seed=1)
    assert (len(train), len(test)) == (95, 5)
    assert set(train["text"]).isdisjoint(test["text"])
    assert train["text"][:] == again["text"][:] and train["text"][:] != other["text"][:]


def test_split_depends_only_on_the_seed():
    ds = render_alpaca(Dataset.from_list(TWIN_ROWS + GENERAL_ROWS), eos_token="</s>")
    a, b, c = (split_dataset(ds, test_size=0.2, seed=s) for s in (0, 0, 1))
    assert [content_hash(x) for x in a] == [content_hash(x) for x in b]
    assert list(a[1]["text"]) == list(b[1]["text"])
    assert set(a[1]["text"]) != set(c[1]["text"])
    assert set(c[0]["text"]) | set(c[1]["text"]) == set(ds["text"])


def test_held_out_rows_is_the_size_of_the_test_split():
    """Preflight counts the test split with it before any data loads: it must be what split_dataset makes."""
    for rows, test_size in ((2, 0.05), (41, 0.2), (36, 0.2), (417, 0.05), (10, 0.99)):
        ds = Dataset.from_list([{"text": f"row {i}"} for i in range(rows)])
        assert len(split_dataset(ds, test_size=test_size, seed=0)[1]) == held_out_rows(rows, test_size)
    assert held_out_rows(417, 0.05) == 21  # the demo's held-out rows
