"""Incremental runs against the live Elasticsearch: the demo corpus, then the same corpus plus new
documents (some duplicating old ones) and a changed one. Only new and changed units are embedded, the
old-vs-new duplicates are found under the old ids, and the rows equal a full run's for those documents."""
import json
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import run
from transforms.reporting.report import read_duplicates, read_summary, read_table, read_units, values_close

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
MATCH_TYPES = ("document", "paragraph")  # the job's default --match_units
CHANGED = "es-guia-biologia-tema1"
COMPARED = ("doc_a", "doc_b", "granularity", "cosine", "jaccard", "method", "rule", "matched_units", "coverage_a",
            "coverage_b", "evidence")
CURRENT = COMPARED + ("relation", "group_id", "canonical_id")
DELETED = ("es-fotosintesis-repost", "new-ajedrez")  # absent from the third snapshot


def corpora(tmp_path: Path) -> tuple[Path, Path, set[str]]:
    """(the demo corpus, the demo corpus with 4 new documents and 1 changed one, the ids touched)."""
    docs = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {d["id"]: d for d in docs}
    paragraphs = {k: d["text"].split("\n\n") for k, d in by_id.items()}
    new = [
        {"id": "new-fotosintesis-copia", "title": "Apuntes: fotosíntesis", "text": by_id["es-fotosintesis"]["text"]},
        {"id": "new-celula-extracto", "title": "Biología para todos",
         "text": "Este tema repasa las ideas básicas de la biología que se estudian en secundaria y en bachillerato.\n\n"
                 + paragraphs["es-celula"][1]
                 + "\n\nEn la próxima lección veremos cómo se organizan las células en tejidos, órganos y sistemas."},
        {"id": "new-volcanes-parafrasis", "title": "Volcanoes, revisited",
         "text": by_id["en-volcanoes"]["text"].replace("magma", "molten rock", 1).replace(" the ", " a ", 2)},
        {"id": "new-ajedrez", "title": "Historia del ajedrez",
         "text": "El ajedrez nació en la India hacia el siglo VI con el nombre de chaturanga y llegó a Europa a "
                 "través de Persia y del mundo árabe.\n\nDurante la Edad Media sus reglas cambiaron: la dama y el "
                 "alfil ganaron alcance, y en el siglo XV el juego ya se parecía mucho al actual."},
    ]
    changed = dict(by_id[CHANGED])
    kept = paragraphs[CHANGED][:2]  # its last paragraph is removed, its first one edited
    changed["text"] = "\n\n".join([kept[0].replace(".", " y sus funciones.", 1), kept[1]])
    base, combined = tmp_path / "base.jsonl", tmp_path / "combined.jsonl"
    base.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    combined.write_text("".join(json.dumps(changed if d["id"] == CHANGED else d, ensure_ascii=False) + "\n" for d in docs)
                        + "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in new), encoding="utf-8")
    return base, combined, {d["id"] for d in new} | {CHANGED}


def args(es_url, index, inp, out, *extra):
    return ["--input", str(inp), "--output", str(out), "--es_url", es_url, "--es_index", index, "--report_top", "0",
            *extra]


def index_state(es_client, name: str) -> dict[str, tuple]:
    es_client.indices.refresh(index=name)
    hits = es_client.search(index=name, size=10_000, query={"match_all": {}},
                            source_includes=["unit_id", "content_hash", "settings", "bands", "shingles", "model_hash",
                                             "dims", "start", "end"])["hits"]["hits"]
    return {h["_id"]: tuple(json.dumps(h["_source"].get(k), sort_keys=True) for k in sorted(h["_source"])) for h in hits}


@pytest.fixture()
def indices(es_client):
    names = [f"test-incr-{uuid.uuid4().hex[:8]}", f"test-full-{uuid.uuid4().hex[:8]}"]
    yield names
    for name in names:
        es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def test_incremental_run_processes_only_new_and_changed_units_and_matches_a_full_run(
        es_url, es_client, indices, tmp_path):
    index, full_index = indices
    base, combined, touched = corpora(tmp_path)
    run(args(es_url, index, base, tmp_path / "first"))
    run(args(es_url, index, combined, tmp_path / "second", "--mode", "incremental"))
    run(args(es_url, full_index, combined, tmp_path / "full"))  # the reference: everything from scratch

    def matched(u):  # the units the job embeds and matches (not template, passages of >= 100 chars)
        return u["unit_type"] in MATCH_TYPES and not u["template"] and (
            u["unit_type"] == "document" or u["end"] - u["start"] >= 100)

    first = {u["unit_id"]: u["content_hash"] for u in read_units(str(tmp_path / "first")) if matched(u)}
    # Only the new and the changed documents were cleaned and split again: the units table holds theirs.
    now = {u["unit_id"]: u for u in read_units(str(tmp_path / "second")) if matched(u)}
    assert {u["doc_id"] for u in now.values()} == touched
    fresh = {uid for uid, u in now.items() if first.get(uid) != u["content_hash"]}
    requeried = {uid for uid, u in now.items() if uid not in fresh}  # the changed document's unchanged paragraph
    assert len(fresh) >= 9 and {u for u in requeried} == {f"{CHANGED}#p1"}
    assert {u for u in first if u.startswith(CHANGED)} - set(now) == {f"{CHANGED}#p2"}

    summary = read_summary(str(tmp_path / "second"))
    c = summary["counts"]
    assert summary["mode"] == "incremental"
    assert c["documents_unchanged"] == 47 and c["documents_cleaned"] == len(touched)  # 48 old - 1 changed
    assert c["by_source"][str(combined)]["reconciled"] and c["by_source"][str(combined)]["processed"] == 52
    assert c["units_fresh"] == c["vectors"] == c["signatures"] == c["indexed"] == len(fresh)  # only these embedded
    assert c["units_unchanged"] == c["units_requeried"] == len(requeried)
    assert c["stale_units_deleted"] == 1  # the paragraph the changed document lost

    rows = read_duplicates(str(tmp_path / "second"))
    pairs = {(r["doc_a"], r["doc_b"]) for r in rows}
    for planted in (("es-fotosintesis", "new-fotosintesis-copia"), ("es-fotosintesis-repost", "new-fotosintesis-copia"),
                    ("es-celula", "new-celula-extracto"), ("en-volcanoes", "new-volcanes-parafrasis"),
                    ("es-celula", CHANGED)):
        assert planted in pairs, (planted, sorted(pairs))
    assert all(r["doc_a"] in touched or r["doc_b"] in touched for r in rows)

    # Row for row, the incremental table equals the full run's rows of the touched documents.
    full_rows = [r for r in read_duplicates(str(tmp_path / "full")) if r["doc_a"] in touched or r["doc_b"] in touched]
    got = {(r["doc_a"], r["doc_b"]): {k: r[k] for k in COMPARED} for r in rows}
    want = {(r["doc_a"], r["doc_b"]): {k: r[k] for k in COMPARED} for r in full_rows}
    assert got.keys() == want.keys()
    for key in want:
        assert values_close(got[key], want[key]), (key, got[key], want[key])

    # The index after the incremental run holds the same units, texts and settings as a rebuild.
    assert index_state(es_client, index) == index_state(es_client, full_index)

    # The current tables cover the whole catalogue: row for row those of the full run over it.
    first_groups = current_groups(tmp_path / "first")
    assert_current_equal(tmp_path / "second", tmp_path / "full")
    second = read_table(str(tmp_path / "second"), "groups_current")
    by_members = {tuple(g["members"]): g for g in second}
    kept = [gid for gid, members in first_groups.items() if tuple(members) in by_members]
    assert len(kept) >= 3
    for gid in kept:  # a group whose membership did not change keeps its id
        g = by_members[tuple(first_groups[gid])]
        assert (g["group_id"], g["change"], g["previous_ids"]) == (gid, "unchanged", [gid])
    changes = {g["group_id"]: g["change"] for g in second}
    assert {changes[g] for g in first_groups if g not in kept} <= {"grown", "changed", "merged"}
    assert "grown" in changes.values()  # fotosíntesis gained its copy, es-celula the changed page
    # This run's own rows carry the catalogue's groups.
    current = {(r["doc_a"], r["doc_b"]): r["group_id"] for r in read_table(str(tmp_path / "second"), "duplicates_current")}
    assert all(current[(r["doc_a"], r["doc_b"])] == r["group_id"] for r in rows)

    # Third snapshot: two documents deleted, with --on_deleted delete; again equal to a full run.
    third = tmp_path / "third.jsonl"
    third.write_text("".join(line + "\n" for line in combined.read_text(encoding="utf-8").splitlines()
                             if json.loads(line)["id"] not in DELETED), encoding="utf-8")
    run(args(es_url, index, third, tmp_path / "deleted", "--mode", "incremental", "--on_deleted", "delete"))
    es_client.indices.delete(index=f"{full_index}*")
    run(args(es_url, full_index, third, tmp_path / "full3"))
    assert_current_equal(tmp_path / "deleted", tmp_path / "full3")
    assert not {d for r in read_table(str(tmp_path / "deleted"), "duplicates_current")
                for d in (r["doc_a"], r["doc_b"])} & set(DELETED)
    assert read_summary(str(tmp_path / "deleted"))["counts"]["absent_documents_deleted"] == len(DELETED)


def current_groups(output: Path) -> dict[str, list[str]]:
    return {g["group_id"]: g["members"] for g in read_table(str(output), "groups_current")}


def assert_current_equal(incremental: Path, full: Path) -> None:
    """The current tables of an incremental run equal those of a full run over the same catalogue."""
    got = {(r["doc_a"], r["doc_b"]): {k: r[k] for k in CURRENT} for r in read_table(str(incremental), "duplicates_current")}
    want = {(r["doc_a"], r["doc_b"]): {k: r[k] for k in CURRENT} for r in read_table(str(full), "duplicates_current")}
    assert got.keys() == want.keys(), (sorted(set(got) - set(want)), sorted(set(want) - set(got)))
    for key in want:
        assert values_close(got[key], want[key]), (key, got[key], want[key])
    # A full run's current pairs are its own pairs.
    assert want.keys() == {(r["doc_a"], r["doc_b"]) for r in read_duplicates(str(full))}
    fields = ("group_id", "canonical_id", "size", "members")
    assert ({g["group_id"]: {k: g[k] for k in fields} for g in read_table(str(incremental), "groups_current")}
            == {g["group_id"]: {k: g[k] for k in fields} for g in read_table(str(full), "groups_current")})


def test_a_second_incremental_run_without_changes_embeds_nothing(es_url, es_client, indices, tmp_path):
    index, _ = indices
    base, _, _ = corpora(tmp_path)
    run(args(es_url, index, base, tmp_path / "first"))
    run(args(es_url, index, base, tmp_path / "again", "--mode", "incremental"))
    c = read_summary(str(tmp_path / "again"))["counts"]
    assert c["units_fresh"] == c["vectors"] == c["indexed"] == c["duplicate_pairs"] == c["documents_cleaned"] == 0
    assert c["documents_unchanged"] == 48 and c["by_source"][str(base)]["reconciled"]


def test_documents_absent_from_a_snapshot_are_deleted_on_request(es_url, es_client, indices, tmp_path):
    index, _ = indices
    base, _, _ = corpora(tmp_path)
    run(args(es_url, index, base, tmp_path / "first"))
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    smaller = tmp_path / "smaller.jsonl"
    smaller.write_text("".join(lines[2:]), encoding="utf-8")
    gone = {json.loads(line)["id"] for line in lines[:2]}
    run(args(es_url, index, smaller, tmp_path / "second", "--mode", "incremental", "--on_deleted", "delete"))
    c = read_summary(str(tmp_path / "second"))["counts"]
    assert c["absent_documents_deleted"] == 2 and c["vectors"] == 0
    es_client.indices.refresh(index=index)
    left = {h["_source"]["doc_id"] for h in es_client.search(index=index, size=10_000, source_includes=["doc_id"])["hits"]["hits"]}
    assert not left & gone and len(left) == len(lines) - 2


TOPICS = ["la fotosíntesis en las plantas verdes", "el ciclo del agua en la naturaleza", "la historia de la imprenta",
          "los volcanes y la tectónica de placas", "la célula y sus orgánulos", "el sistema solar y sus planetas",
          "la Revolución Industrial en Europa", "la digestión en el ser humano", "los ecosistemas marinos",
          "la energía eólica y solar", "el Imperio romano y sus provincias", "las ondas sonoras y la música",
          "la genética de Mendel"]
FOOTER = ("Si encuentra un error en esta página, envíe un informe al equipo de documentación desde el formulario "
          "de contacto del sitio.")


def site(topics):
    """Pages of one site: a paragraph of their own and the site's footer (its template text)."""
    return [{"id": f"pagina-{i:02d}", "title": t.capitalize(),
             "text": f"Esta página explica {t}, con ejemplos sencillos y un resumen de las ideas principales "
                     f"que conviene recordar sobre {t}.\n\n{FOOTER}"} for i, t in enumerate(topics)]


def test_template_text_of_unchanged_documents_still_counts_in_an_incremental_run(es_url, indices, tmp_path):
    """Template paragraphs are a property of the whole corpus: a new page's footer is template text in
    an incremental run as in a full run, though only the new page is cleaned and split again."""
    index, full_index = indices
    old, grown = tmp_path / "old.jsonl", tmp_path / "grown.jsonl"
    old.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in site(TOPICS[:12])), encoding="utf-8")
    grown.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in site(TOPICS)), encoding="utf-8")
    run(args(es_url, index, old, tmp_path / "first"))
    run(args(es_url, index, grown, tmp_path / "second", "--mode", "incremental"))
    run(args(es_url, full_index, grown, tmp_path / "full"))

    assert read_summary(str(tmp_path / "second"))["counts"]["documents_cleaned"] == 1  # only the new page
    templates = {run_: [(t["text"], t["documents"]) for t in read_table(str(tmp_path / run_), "templates")]
                 for run_ in ("second", "full")}
    assert templates["second"] == templates["full"] == [(FOOTER, 13)]
    new = {run_: {u["unit_type"]: u for u in read_units(str(tmp_path / run_)) if u["doc_id"] == "pagina-12"}
           for run_ in ("second", "full")}
    assert new["second"]["paragraph"]["template"] and new["full"]["paragraph"]["template"]
    # Its document text leaves the footer out in both runs, so its vector and shingles are the same.
    assert new["second"]["document"]["content_hash"] == new["full"]["document"]["content_hash"]
    assert FOOTER not in new["second"]["document"]["text"]
