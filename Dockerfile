# kanca in a container: a CGO build (the SQLite driver is C) on the Go image,
# run on a slim Debian of the same release so glibc matches.
#   docker build -t kanca .
#   docker run -e KANCA_ARI_URL=http://pbx:8088 -e KANCA_ARI_USER=kanca \
#     -e KANCA_ARI_PASSWORD=... -v kanca-data:/var/lib/kanca kanca

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git stays out of the context, so the build info has no revision: name
# the release here (docker build --build-arg VERSION=v1.4.0 .).
ARG VERSION=
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X github.com/kanca/kanca/version.Release=${VERSION}" \
      -o /out/kanca ./cmd/kanca

FROM debian:bookworm-slim
# ca-certificates: hooks on https; tzdata: KANCA_TZ=Europe/Istanbul.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kanca --shell /usr/sbin/nologin kanca \
 && install -d -o kanca -g kanca -m 0700 /var/lib/kanca
COPY --from=build /out/kanca /usr/local/bin/kanca
ENV KANCA_DB=/var/lib/kanca/kanca.db
USER kanca
WORKDIR /var/lib/kanca
VOLUME /var/lib/kanca
ENTRYPOINT ["kanca"]
CMD ["run"]
