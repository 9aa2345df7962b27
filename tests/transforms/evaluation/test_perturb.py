"""The synthetic perturbation suite: every edit does what it says, seeded and reproducible."""
import random
import re

import pytest

from transforms.text.normalize import clean_text
from transforms.evaluation.perturb import KINDS, generate, perturb

TEXT = ("La fotosíntesis es un proceso muy importante. Las plantas usan la luz del sol. "
        "También producen oxígeno para el aire.\n\nEste cambio permite la vida en la Tierra. "
        "Es un ejemplo de energía transformada. Las algas hacen lo mismo en el mar.")
OTHER = "Primer párrafo de otro artículo distinto.\n\nSegundo párrafo del otro artículo, sobre historia."
VOCAB = ["mesa", "río", "casa", "libro"]


def words(text):
    return re.findall(r"\w+", text.lower())


def test_each_edit_type():
    rng = random.Random(1)
    assert perturb(TEXT, "exact", rng, VOCAB) == TEXT
    assert clean_text(perturb(TEXT, "html", rng, VOCAB)) == clean_text(TEXT)  # the wrapper is boilerplate
    dropped = perturb(TEXT, "sentence_drop", random.Random(3), VOCAB)
    assert set(words(dropped)) <= set(words(TEXT)) and len(words(dropped)) <= len(words(TEXT))
    reordered = perturb(TEXT, "sentence_reorder", random.Random(2), VOCAB)
    assert sorted(words(reordered)) == sorted(words(TEXT))
    substituted = perturb(TEXT, "substitute_30", random.Random(4), VOCAB)
    changed = sum(a != b for a, b in zip(words(TEXT), words(substituted)))
    assert len(words(substituted)) == len(words(TEXT)) and 0.1 < changed / len(words(TEXT)) < 0.5
    synonym = perturb(TEXT, "synonym", rng, VOCAB)
    assert "sumamente relevante" in synonym and "Asimismo" in synonym and "posibilita" in synonym
    transplanted = perturb(TEXT, "transplant", random.Random(5), VOCAB, OTHER)
    parts = transplanted.split("\n\n")
    assert len(parts) == 3 and set(OTHER.split("\n\n")) < set(parts) and set(parts) & set(TEXT.split("\n\n"))
    with pytest.raises(ValueError, match="unknown edit type"):
        perturb(TEXT, "translate", rng, VOCAB)


def test_generate_is_seeded_and_labels_every_copy():
    docs = [{"id": f"d{i}", "text": TEXT.replace("Tierra", f"Tierra {i}")} for i in range(6)] + [
        {"id": "o", "text": OTHER + " " + " ".join(["palabra"] * 20)}]
    a_docs, a_gold = generate(docs, seed=9, per_kind=2)
    b_docs, b_gold = generate(docs, seed=9, per_kind=2)
    assert (a_docs, a_gold) == (b_docs, b_gold)
    assert generate(docs, seed=10, per_kind=2)[1] != a_gold
    copies = [d for d in a_docs if "perturbation" in d]
    assert len(copies) == 2 * len(KINDS)
    labelled = {b for _, b, kind, dup in a_gold if dup == 1 and kind in KINDS}
    assert labelled == {d["id"] for d in copies}
    assert sum(1 for *_, kind, dup in a_gold if kind == "unrelated_pair" and dup == 0) == 20
    assert sum(1 for *_, kind, _ in a_gold if kind == "transplant_host") == 2


def test_html_originals_are_edited_as_their_text():
    page = "<html><body><nav>Menú</nav><article>" + "".join(f"<p>{p}</p>" for p in TEXT.split("\n\n")) + \
        "</article></body></html>"
    docs = [{"id": "page", "text": page}, {"id": "plain", "text": OTHER + " " + " ".join(["palabra"] * 20)}]
    out, _ = generate(docs, seed=1, per_kind=2, kinds=("html", "sentence_reorder", "exact"))
    by_kind = {d["perturbation"]: d for d in out if d.get("source_id") == "page"}
    assert by_kind["exact"]["text"] == page
    assert "&lt;" not in by_kind["html"]["text"] and "fotosíntesis" in clean_text(by_kind["html"]["text"])
    assert sorted(words(by_kind["sentence_reorder"]["text"])) == sorted(words(clean_text(page)))
