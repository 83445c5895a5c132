# Sluice — see README.md. Every target installs what it needs (as root on
# Debian 12) and says so; tools and caches live under $(CACHE), outside the repo.

GO       ?= go
CACHE    ?= /var/cache/sluice
BIN      := bin/sluice
DEMO_DIR ?= /tmp/sluice-demo
DEMO_ROWS ?= 20000
export PATH := $(CACHE)/bin:/usr/local/go/bin:$(PATH)

.PHONY: all build test unit lint bench demo clean deps images fuzz policy-check

all: build

deps:
	@hack/deps.sh go

build: deps
	@echo "build: $(BIN)"
	@$(GO) build -o $(BIN) ./cmd/sluice

## test: everything CI runs — lint, the Rego policy with OPA's own CLI, every
## Go test (against real containerd, runc and gVisor, which it installs and
## starts), the egress and sandbox tests again under the race detector, then
## each product-parser fuzz target briefly.
test: lint policy-check unit fuzz

## fuzz: each product-parser target for a fixed number of inputs. A count,
## not a duration: go1.26's coordinator can fail a target with "context
## deadline exceeded" when a -fuzztime deadline lands mid-call (go.dev/issue/75804),
## and a count has no deadline. Minimisation of new inputs is bounded too.
FUZZ_EXECS ?= 3000
FUZZ_TARGETS := FuzzCSV FuzzTSV FuzzJSON FuzzJSONL FuzzMarkdown FuzzText FuzzParquet FuzzArrow

fuzz: deps
	@for f in $(FUZZ_TARGETS); do \
		echo "fuzz: $$f for $(FUZZ_EXECS) inputs"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZ_EXECS)x -fuzzminimizetime 100x ./egress/ > .fuzz.log 2>&1 && tail -1 .fuzz.log || { cat .fuzz.log; rm -f .fuzz.log; exit 1; }; \
	done; rm -f .fuzz.log

## policy-check: opa check --strict and opa test on the embedded policy.
policy-check:
	@hack/deps.sh opa
	@echo "policy: opa check --strict policy/rego"
	@opa check --strict policy/rego
	@echo "policy: opa test policy/rego"
	@opa test policy/rego

unit: build images
	@echo "test: go test ./... (integration tests use containerd namespace sluice-test)"
	@$(GO) test -count=1 -timeout 40m ./...
	@echo "test: go test -race ./egress/ ./sandbox/ (gates and uid leases are shared by concurrent work)"
	@$(GO) test -count=1 -race -timeout 20m ./egress/ ./sandbox/

## images: build the job images (cached under $(CACHE)/images) and import them.
images: build
	@hack/deps.sh containerd
	@echo "images: busybox, python (first build runs debootstrap: a few minutes)"
	@$(BIN) image build images/busybox --cache-dir $(CACHE)
	@$(BIN) image build images/python --cache-dir $(CACHE)

lint:
	@hack/deps.sh staticcheck
	@echo "lint: gofmt"
	@out=$$(gofmt -l .); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@echo "lint: go vet"
	@$(GO) vet ./...
	@echo "lint: staticcheck"
	@staticcheck ./...

## bench: Go benchmarks and the comparison scripts; prints the figures.
bench: build images
	@hack/deps.sh bench
	@echo "bench: go test -bench"
	@$(GO) test -run='^$$' -bench=. -benchmem ./...
	@bench/mask.sh $(BIN)
	@bench/duckdb.sh $(BIN)
	@bench/sandbox.sh $(BIN)
	@bench/egress.sh $(BIN)
	@bench/server.sh $(BIN)

## demo: the main flow on the embedded defaults.
demo: build images
	@echo "demo: generating $(DEMO_ROWS) synthetic residents in $(DEMO_DIR)"
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@$(BIN) demo-data --rows $(DEMO_ROWS) --out $(DEMO_DIR) --seed 1
	@echo
	@echo "demo: what is in the raw data (sluice dataset inspect)"
	@$(BIN) dataset inspect $(DEMO_DIR)/residents.csv
	@echo
	@echo "demo: suggested classification (sluice dataset classify)"
	@$(BIN) dataset classify $(DEMO_DIR)/residents.csv --out $(DEMO_DIR)/residents.classes.yaml
	@sed -n '3,$$p' $(DEMO_DIR)/residents.classes.yaml
	@echo
	@echo "demo: a per-scenario pseudonym key"
	@head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $(DEMO_DIR)/scenario.key
	@echo "demo: masking with the prod profile (sluice dataset mask)"
	@$(BIN) dataset mask --source $(DEMO_DIR)/residents.csv --classes $(DEMO_DIR)/residents.classes.yaml \
		--key $(DEMO_DIR)/scenario.key --out $(DEMO_DIR)/residents.masked.arrow
	@echo
	@echo "demo: masking with the dev profile (10% sample, noise, suppression)"
	@$(BIN) dataset mask --source $(DEMO_DIR)/residents.csv --classes $(DEMO_DIR)/residents.classes.yaml \
		--key $(DEMO_DIR)/scenario.key --profile dev --out $(DEMO_DIR)/residents.dev.parquet
	@echo
	@echo "demo: the masked prod dataset"
	@$(BIN) dataset inspect $(DEMO_DIR)/residents.masked.arrow
	@echo
	@echo "demo: an analysis job in the sandbox (no network, read-only root, a host uid of its own) over the masked data"
	@$(BIN) sandbox run --image python --input residents=$(DEMO_DIR)/residents.masked.arrow \
		--code docs/examples/income-by-city --timeout 5m --memory 1G --out $(DEMO_DIR)/quarantine \
		-- python3 /code/main.py
	@echo
	@echo "demo: the job's output waits in quarantine for the egress gate:"
	@head -5 $(DEMO_DIR)/quarantine/out/income_by_city.csv
	@echo
	@echo "demo: the egress gate checks the output and the job's stdout against the raw source"
	@$(BIN) egress check --source $(DEMO_DIR)/residents.csv --classes $(DEMO_DIR)/residents.classes.yaml \
		--record-inputs $(DEMO_DIR)/policy-inputs \
		$(DEMO_DIR)/quarantine/out/income_by_city.csv $(DEMO_DIR)/quarantine/stdout
	@echo
	@echo "demo: and what it does with a product that gives people away (the top income per city):"
	@$(BIN) dataset mask --source $(DEMO_DIR)/residents.csv --classes $(DEMO_DIR)/residents.classes.yaml \
		--key $(DEMO_DIR)/scenario.key --out $(DEMO_DIR)/peek.csv > /dev/null
	@awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$$i] = i; next } \
		{ c = $$col["district_code"]; v = $$col["monthly_income"] + 0; if (!(c in max) || v > max[c]) max[c] = v } \
		END { print "city_code,top_income"; for (c in max) print c "," max[c] }' \
		$(DEMO_DIR)/peek.csv > $(DEMO_DIR)/top_income_by_city.csv
	@$(BIN) egress check --source $(DEMO_DIR)/residents.csv --classes $(DEMO_DIR)/residents.classes.yaml \
		$(DEMO_DIR)/top_income_by_city.csv; rc=$$?; \
		if [ $$rc -eq 1 ]; then echo "demo: denied (exit 1), as it must be"; \
		else echo "demo: the gate did not deny it (exit $$rc): that is a bug"; exit 1; fi
	@echo
	@echo "demo: done; files are in $(DEMO_DIR)"

clean:
	rm -rf bin
