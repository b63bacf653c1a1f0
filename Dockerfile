# syntax=docker/dockerfile:1
# Gatehouse container image: a static binary on distroless, running as an unprivileged user.
# Build: docker build -t gatehouse --build-arg VERSION=$(git describe --tags --always) .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gatehouse ./cmd/gatehouse
# The data directory, owned by the runtime user (distroless has no shell to create it later).
RUN mkdir -p /out/data && chmod 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
USER 65532:65532
ENV GATEHOUSE_DATA=/var/lib/gatehouse \
    GATEHOUSE_LISTEN=0.0.0.0:8080 \
    GATEHOUSE_LOG_FORMAT=json
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/gatehouse", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
