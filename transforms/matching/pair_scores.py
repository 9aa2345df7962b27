"""Both signals for a list of document pairs, computed with the job's own pieces (for evaluation).

    scores = score_document_pairs(texts, pairs, encoder, granularities=("document", "sentence"))
    scores["sentence"]["cosine"][i]   # best cosine between any two sentences of pairs[i]

Texts are cleaned (transforms.text.normalize) and split (transforms.text.units) exactly as the job does; every
unit is embedded once with the encoder (transforms.signals.embed.load_encoder) and shingled with the job's
MinHash settings (exact Jaccard of the shingle sets, as VerifyJaccard keeps). At document
granularity a pair's scores are the documents'; at paragraph/sentence granularity they are the best
over all unit pairs of the two documents (None when either side has no such unit).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from transforms.text.language import detect_language
from transforms.signals.minhash import MinHasher, MinHashParams, exact_jaccard
from transforms.text.normalize import clean_text
from transforms.text.units import split_units


def score_document_pairs(texts: dict[str, str], pairs: Sequence[tuple[str, str]], encoder, *,
                         granularities: Sequence[str] = ("document",), params: MinHashParams = MinHashParams(),
                         min_unit_chars: int = 1, batch_size: int = 32, clean: bool = True) -> dict:
    """-> {granularity: {"cosine": [float | None], "jaccard": [float | None]}} aligned with `pairs`."""
    needed = sorted({d for p in pairs for d in p})
    units_by_doc: dict[str, dict[str, list[int]]] = {}
    unit_texts: list[str] = []
    for doc_id in needed:
        text = clean_text(texts[doc_id]) if clean else texts[doc_id]
        doc = {"id": doc_id, "text": text, "lang": detect_language(text)}
        units, _ = split_units(doc, granularities, min_chars=min_unit_chars)
        slots = units_by_doc.setdefault(doc_id, {g: [] for g in granularities})
        for u in units:
            if u["text"].strip():
                slots[u["unit_type"]].append(len(unit_texts))
                unit_texts.append(u["text"])
    vectors = np.asarray(encoder.encode(unit_texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
    hasher = MinHasher(params)
    shingles = [hasher.shingle_ids(t) for t in unit_texts]
    out = {g: {"cosine": [], "jaccard": []} for g in granularities}
    for a, b in pairs:
        for g in granularities:
            ua, ub = units_by_doc[a][g], units_by_doc[b][g]
            if not ua or not ub:
                out[g]["cosine"].append(None)
                out[g]["jaccard"].append(None)
                continue
            cos = float((vectors[ua] @ vectors[ub].T).max())
            jac = max(exact_jaccard(shingles[i], shingles[j]) for i in ua for j in ub)
            out[g]["cosine"].append(round(min(1.0, cos), 6))
            out[g]["jaccard"].append(round(jac, 6))
    return out
