# The test command: what CI runs, and what you run before you push.
.PHONY: test build bench

# php-check says, before the run, when the PHP examples' tests cannot run
# (and fails under CI): go test reports their skips only with -v.
test:
	.ci/php-check
	go test -race -count=1 ./...

build:
	go build -o kanca ./cmd/kanca

bench:
	go test -run '^$$' -bench . -benchmem ./...
