# syntax=docker/dockerfile:1
# Multi-stage build: a static binary (pure Go, no cgo) in an image with no
# shell, running as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sekisho ./cmd/sekisho \
 && mkdir -p /out/data && chown 65532:65532 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sekisho /usr/local/bin/sekisho
COPY --from=build --chown=65532:65532 /out/data /var/lib/sekisho
USER 65532:65532
WORKDIR /var/lib/sekisho
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/sekisho"]
CMD ["serve", "--config", "/etc/sekisho/sekisho.yaml"]
