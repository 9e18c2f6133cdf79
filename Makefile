# pgstate — the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
SQLC      := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc
WITH_PG   := scripts/with-postgres.sh
VET_DB    := pgstate_sqlc_vet
# Nested modules (own go.mod, replace to this one): tested, vetted and
# generated with the root module.
NESTED    := examples/extend contrib/otelpgstate bench/peers

.PHONY: all test test-short generate check-generated lint bench bench-peers demo tools

all: check-generated lint test

## test: every test, race detector on, against TEST_DATABASE_URL, the local
## server at 127.0.0.1:5432, or a throwaway cluster.
test:
	$(WITH_PG) -- sh -c '$(GO) test -race -count=1 -timeout 60m ./... && \
		for m in $(NESTED); do $(GO) -C $$m test -race -count=1 -timeout 20m ./... || exit 1; done'

## test-short: skips the slow fault-injection tests.
test-short:
	$(WITH_PG) -- sh -c '$(GO) test -race -short -count=1 ./... && \
		for m in $(NESTED); do $(GO) -C $$m test -race -short -count=1 ./... || exit 1; done'

## generate: compile queries/*.sql into gen/.
generate:
	$(SQLC) generate
	$(GO) run ./cmd/statectl schema export examples/extend/pgstate-schema
	$(SQLC) -f examples/extend/sqlc.yaml generate

## check-generated: fail if gen/ differs from what queries/ and schema/
## produce, or if a query does not prepare against a migrated database.
check-generated:
	$(SQLC) diff
	$(SQLC) -f examples/extend/sqlc.yaml diff
	$(WITH_PG) -- sh -c '$(GO) run ./internal/cmd/vetdb "$$TEST_DATABASE_URL" $(VET_DB) > .vetdb.url && \
		VET_DATABASE_URL="$$(cat .vetdb.url)" $(SQLC) vet; status=$$?; rm -f .vetdb.url; \
		$(GO) run ./internal/cmd/vetdb -drop "$$TEST_DATABASE_URL" $(VET_DB) || status=1; exit $$status'

## lint: go vet and staticcheck.
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck ./...
	for m in $(NESTED); do $(GO) -C $$m vet ./... || exit 1; done
	for m in $(NESTED); do (cd $$m && $(GO) run -modfile=$(CURDIR)/go.mod honnef.co/go/tools/cmd/staticcheck ./...) || exit 1; done

tools:
	$(GO) build -o /dev/null github.com/sqlc-dev/sqlc/cmd/sqlc
	$(GO) build -o /dev/null honnef.co/go/tools/cmd/staticcheck

## demo: the guided tour of examples/basic, against DATABASE_URL if set,
## otherwise against a throwaway cluster that is removed afterwards.
demo:
	$(WITH_PG) --throwaway -- $(GO) run ./examples/basic

## bench: every benchmark next to its two baselines (raw: the same SQL
## through pgx; floor: the statement an expert would write for the job, on
## a table without the change feed's triggers), written to bench.out, then
## both ratios with their per-round spread and the targets of issues 4 and
## 11 (benchratio), and the write benchmarks with the feed on and off
## against the floor and issue 19's targets (bench/feedratio). Each group
## is a separate process with a fixed iteration count per sub-benchmark;
## bench's -rounds repeats every benchmark in the process, and within a
## round lib, raw and floor run one after the other, so they are
## interleaved (go test's -count would run lib N times and then raw N
## times).
## Groups marked =F (single-key reads, where 5 % is the question) run
## BENCH_ROUNDS_FAST rounds, those marked =W (the writes measured with the
## change feed on and off, issue 19) BENCH_ROUNDS_WRITE, the others
## BENCH_COUNT.
BENCH_COUNT ?= 5
BENCH_ROUNDS_FAST ?= 15
BENCH_ROUNDS_WRITE ?= 100
BENCH_GROUPS := \
	"^Benchmark(Get|Contains|ConcurrentGet|ConcurrentPut)$$=2000x=F" \
	"^Benchmark(Put|PutWithTTL|Delete)$$=400x=W" \
	"^Benchmark(GetMany|ListKeys|FindByMetadata)$$=400x" \
	"^Benchmark(PutIfVersion|Transact)$$=400x" \
	"^BenchmarkCount$$=30x" \
	"^BenchmarkBatchPut$$/^100(\#|$$)=50x" \
	"^BenchmarkBatchPut$$/^1000(\#|$$)/^(lib|lib-feed-off|raw|copy)$$=20x=W" \
	"^BenchmarkBatchPut$$/^1000(\#|$$)/^put-each$$=1x" \
	"^BenchmarkBatchPut$$/^10000(\#|$$)=5x=W" \
	"^BenchmarkBatchPut$$/^100000(\#|$$)=1x" \
	"^BenchmarkBatchUpsert$$=5x" \
	"^Benchmark(CreateCheckpoint|RestoreCheckpoint|DeleteCheckpoint)$$/^100(\#|$$)=20x" \
	"^Benchmark(CreateCheckpoint|RestoreCheckpoint|DeleteCheckpoint|CheckpointRetention)$$/^150000(\#|$$)=1x" \
	"^BenchmarkCleanupExpired$$/^50000(\#|$$)=1x=W" \
	"^BenchmarkCleanupExpired$$/^100000(\#|$$)=1x" \
	"^BenchmarkScan$$=1x" \
	"^BenchmarkPutFeed$$=2000x" \
	"^BenchmarkWatchLatency$$=2000x" \
	"^BenchmarkWatchScale$$=1x" \
	"^BenchmarkWatchFanout$$=1x"
bench:
	@rm -f bench.out
	$(WITH_PG) -- sh -c 'for g in $(BENCH_GROUPS); do \
		re=$${g%%=*}; rest=$${g#*=}; bt=$${rest%%=*}; n=$(BENCH_COUNT); \
		case "$${rest#*=}" in F) n=$(BENCH_ROUNDS_FAST);; W) n=$(BENCH_ROUNDS_WRITE);; esac; \
		echo "bench: $$re ($$bt x $$n)" >&2; \
		$(GO) test ./bench -run "^$$" -count=1 -timeout 30m \
			-bench "$$re" -benchtime "$$bt" -rounds "$$n" >> bench.out || { cat bench.out; exit 1; }; \
	done'
	$(GO) run ./internal/cmd/benchratio bench.out
	$(GO) run ./bench/feedratio bench.out

## bench-peers: pgstate, Dapr's PostgreSQL v2 state store and gokv's
## PostgreSQL store on the same server and workloads, rounds alternating
## between them (the nested module bench/peers); prints the peer table.
PEERS_ROUNDS ?= 5
bench-peers:
	$(WITH_PG) -- sh -c 'cd bench/peers && $(GO) run . -rounds $(PEERS_ROUNDS)'
