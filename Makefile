# Warden: `make up` runs the whole mesh locally, `make test` runs every test.
.PHONY: up down test build bench clean-state help

help:
	@echo "make up      build and run the whole mesh here (installs nats-server, libnats-dev, PostgreSQL if root)"
	@echo "make down    stop a mesh left running"
	@echo "make test    start real NATS and PostgreSQL on free ports, run every test, stop them"
	@echo "make bench   run the benchmarks (see BENCHMARKS.md)"
	@echo "make build   swift build"

up:
	@scripts/mesh.sh up

down:
	@scripts/mesh.sh down

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

build:
	swift build

# Removes the local mesh's data (PostgreSQL cluster, JetStream store, logs, secrets).
clean-state: down
	rm -rf .warden
