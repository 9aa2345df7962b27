"""Decision rules over a pair's evidence, written as expressions:

    jaccard >= 0.8 or (cosine >= 0.92 and jaccard >= 0.2)

Names: `cosine`, `jaccard`, `margin` (cosine over the mean cosine of the two units' k nearest
neighbours), `aligned` and `small_edits` (the word-sequence alignment of two documents,
transforms/matching/alignment.py; documents only), `containment` (share of the smaller unit's
shingles found in the other); a missing score is treated as 0; numbers; comparisons; `and`, `or`,
`not`; parentheses. Parsed once with Python's `ast` and checked against that whitelist, so a rule
can never run code.
"""
from __future__ import annotations

import ast
import operator

_COMPARE = {ast.GtE: operator.ge, ast.Gt: operator.gt, ast.LtE: operator.le, ast.Lt: operator.lt,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
NAMES = ("cosine", "jaccard", "margin", "aligned", "small_edits", "containment")


class Rule:
    """A compiled decision rule; `Rule(text)(cosine=..., jaccard=...)` -> bool."""

    def __init__(self, text: str):
        self.text = " ".join(text.split())
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"rule {text!r} is not a valid expression: {exc.msg}") from None
        self._check(self._tree)

    def _check(self, node):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._check(node.operand)
        elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            for v in [node.left, *node.comparators]:
                self._check(v)
        elif isinstance(node, ast.Name) and node.id in NAMES:
            pass
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            pass
        else:
            raise ValueError(f"rule {self.text!r}: only {', '.join(NAMES)}, numbers, comparisons, and/or/not allowed "
                             f"(found {ast.dump(node)[:60]})")

    def _eval(self, node, env):
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, env) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            return not self._eval(node.operand, env)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, env)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            return env[node.id]
        return node.value

    def __call__(self, cosine=None, jaccard=None, margin=None, aligned=None, small_edits=None,
                 containment=None) -> bool:
        return bool(self._eval(self._tree, {"cosine": cosine or 0.0, "jaccard": jaccard or 0.0, "margin": margin or 0.0,
                                            "aligned": aligned or 0.0, "small_edits": small_edits or 0.0,
                                            "containment": containment or 0.0}))

    @property
    def names(self) -> set:
        """The score names the rule reads."""
        return {n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name)}

    def __repr__(self):
        return f"Rule({self.text!r})"
