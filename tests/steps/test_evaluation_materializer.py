"""The evaluation's dashboard card: the means, then every row with its instruction, reference and both answers."""

from twinsft.generation.evaluate import Answer, EvalReport, EvalRow
from twinsft.steps.evaluation_materializer import EvalReportMaterializer, evaluation_markdown

ROWS = [
    EvalRow(instruction="Give me a tip about topic 3.", reference="Tip 3: measure before you tune.", reference_tokens=9,
            base=Answer(text="topic topic topic", new_tokens=8, stopped_at_eos=False, reference_loss=4.5),
            tuned=Answer(text="Tip 3: measure first.", new_tokens=6, stopped_at_eos=True, reference_loss=1.5)),
    EvalRow(instruction="# Not a heading\nsecond line", reference="| not | a table |", reference_tokens=5,
            base=Answer(text="", new_tokens=1, stopped_at_eos=True, reference_loss=3.5),
            tuned=Answer(text="Fine.", new_tokens=3, stopped_at_eos=True, reference_loss=2.5)),
]
REPORT = EvalReport(test_rows=8, max_new_tokens=8, rows=ROWS)


def test_card_shows_the_means_and_every_row_with_its_numbers():
    card = evaluation_markdown(REPORT)
    assert "## Base vs tuned on 2 held-out rows" in card
    assert "| mean reference loss | 4.0000 | 2.0000 (-50.0%) |" in card
    assert "| stopped at EOS | 1/2 | 2/2 |" in card
    assert "The first 2 of the 8 rows of the test split" in card and "at most 8 new tokens" in card
    row_one = card[card.index("### Row 1"):card.index("### Row 2")]
    for text in ("> Give me a tip about topic 3.", "**Reference** (9 tokens with EOS)",
                 "> Tip 3: measure before you tune.",
                 "**Base**: reference loss 4.5000, 8 new tokens, did NOT stop at EOS", "> topic topic topic",
                 "**Tuned**: reference loss 1.5000, 6 new tokens, stopped at EOS", "> Tip 3: measure first."):
        assert text in row_one, text
    # The rows' own text is quoted line by line, so it cannot turn into the card's headings or tables.
    row_two = card[card.index("### Row 2"):]
    assert "> # Not a heading\n> second line" in row_two and "> | not | a table |" in row_two
    assert "> *(empty)*" in row_two


def test_card_of_an_evaluation_that_was_off():
    card = evaluation_markdown(EvalReport(test_rows=8, max_new_tokens=8))
    assert "Off: `generation.eval_samples` is 0." in card and "Row" not in card


def test_stored_through_zenml_it_loads_back_and_shows_the_card():
    from zenml import save_artifact
    from zenml.artifacts.utils import load_artifact_visualization

    version = save_artifact(REPORT, name="evaluation-card-test", materializer=EvalReportMaterializer)
    assert version.load() == REPORT
    assert [v.type.value for v in version.visualizations] == ["markdown", "json"]
    assert load_artifact_visualization(version, 0).value == evaluation_markdown(REPORT)
