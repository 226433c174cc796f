# The test command: what CI runs, and what you run before you push.
.PHONY: test build bench

# php-check says, before the run, when the PHP examples' tests cannot run
# (and fails under CI): go test reports their skips only with -v.
# books/ replays every recording through a real restart of kanca at many
# points (thousands of calls): under the race detector that alone takes
# longer than CI allows on two cores, so it runs without it. The pipeline,
# sources and follower it drives are raced by their own packages' tests.
test:
	.ci/php-check
	go test -race -count=1 $$(go list ./... | grep -v '/books$$')
	go test -count=1 ./books

build:
	go build -o kanca ./cmd/kanca

bench:
	go test -run '^$$' -bench . -benchmem ./...
