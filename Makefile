# pgstate — the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
SQLC      := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc
WITH_PG   := scripts/with-postgres.sh
VET_DB    := pgstate_sqlc_vet
# Nested modules (own go.mod, replace to this one): tested, vetted and
# generated with the root module.
NESTED    := examples/extend

.PHONY: all test test-short generate check-generated lint bench demo tools

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
		VET_DATABASE_URL="$$(cat .vetdb.url)" $(SQLC) vet; status=$$?; rm -f .vetdb.url; exit $$status'

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

## bench: every benchmark next to its raw pgx baseline, BENCH_COUNT runs each,
## written to bench.out, then the library/raw ratios and the targets of
## issue 4. Each group has a fixed iteration count so the whole run fits in
## ten minutes on a 2-core machine; the groups run as separate processes.
BENCH_COUNT ?= 5
BENCH_GROUPS := \
	"^Benchmark(Get|Contains|ConcurrentGet|ConcurrentPut)$$=2000x" \
	"^Benchmark(Put|PutWithTTL|Delete|GetMany|ListKeys|FindByMetadata)$$=400x" \
	"^Benchmark(PutIfVersion|Transact)$$=400x" \
	"^BenchmarkCount$$=30x" \
	"^BenchmarkBatchPut$$/^100$$=50x" \
	"^BenchmarkBatchPut$$/^1000$$/(lib|raw|copy)$$=10x" \
	"^BenchmarkBatchPut$$/^1000$$/put-each$$=1x" \
	"^BenchmarkBatchPut$$/^10000$$=3x" \
	"^BenchmarkBatchPut$$/^100000$$=1x" \
	"^Benchmark(CreateCheckpoint|RestoreCheckpoint)$$/^100$$=20x" \
	"^Benchmark(CreateCheckpoint|RestoreCheckpoint)$$/^100000$$=1x" \
	"^BenchmarkCleanupExpired$$=2x" \
	"^BenchmarkScan$$=1x" \
	"^BenchmarkPutFeed$$=2000x" \
	"^BenchmarkWatchLatency$$=2000x"
bench:
	@rm -f bench.out
	$(WITH_PG) -- sh -c 'for g in $(BENCH_GROUPS); do \
		echo "bench: $${g%=*} ($${g##*=} x $(BENCH_COUNT))" >&2; \
		$(GO) test ./bench -run "^$$" -count=$(BENCH_COUNT) -timeout 30m \
			-bench "$${g%=*}" -benchtime "$${g##*=}" >> bench.out || { cat bench.out; exit 1; }; \
	done'
	$(GO) run ./internal/cmd/benchratio bench.out
