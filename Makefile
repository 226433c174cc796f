# The test command: what CI runs, and what you run before you push.
.PHONY: test build bench

test:
	go test -race -count=1 ./...

build:
	go build -o kanca ./cmd/kanca

bench:
	go test -run '^$$' -bench . -benchmem ./...
