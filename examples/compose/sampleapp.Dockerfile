# syntax=docker/dockerfile:1
# The sample internal app of examples/apps, for the compose example.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sampleapp ./examples/apps/cmd/sampleapp

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sampleapp /usr/local/bin/sampleapp
USER 65532:65532
EXPOSE 9001
ENTRYPOINT ["/usr/local/bin/sampleapp"]
