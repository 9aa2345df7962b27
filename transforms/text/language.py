"""Language detection per document (py3langid: a small model shipped inside the package, offline)."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import apache_beam as beam
from apache_beam.metrics import Metrics


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, sample_chars: int = 2000, min_confidence: float = 0.5) -> Optional[str]:
    """ISO 639-1 code of the text's language, or None when the text is too short or unclear."""
    sample = text[:sample_chars]
    if sum(ch.isalpha() for ch in sample) < 20:
        return None
    lang, confidence = _identifier().classify(sample)
    return lang if confidence >= min_confidence else None


class DetectLanguage(beam.PTransform):
    """Document -> Document with `lang_detected`; `lang` keeps the input's value, else the detected one."""

    def expand(self, docs):
        undetected = Metrics.counter("language", "undetected")

        def detect(doc):
            lang = detect_language(doc["text"])
            if lang is None:
                undetected.inc()
            return {**doc, "lang_detected": lang, "lang": doc.get("lang") or lang}

        return docs | "Detect" >> beam.Map(detect)
