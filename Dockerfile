# Multi-stage build: compile with libvips headers, run with the libvips
# runtime only.
#   docker build -t imgpipe .
#   docker run -p 8080:8080 imgpipe dev --listen 0.0.0.0:8080 --data-dir /data
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libvips-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN go build -trimpath -ldflags "-s -w -X github.com/imgpipe/imgpipe/app.Version=${VERSION}" -o /out/imgpipe .

FROM debian:bookworm-slim
# libvips42 pulls the codecs (jpeg, png, webp, heif/avif, gif, tiff);
# libjemalloc2 keeps RSS flat under libvips' many short-lived allocations.
RUN apt-get update && apt-get install -y --no-install-recommends libvips42 libjemalloc2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --create-home imgpipe
ENV LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    MALLOC_ARENA_MAX=2 \
    IMGPIPE_DATA_DIR=/data \
    IMGPIPE_HTTP_LISTEN=0.0.0.0:8080
COPY --from=build /out/imgpipe /usr/local/bin/imgpipe
USER imgpipe
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["imgpipe"]
CMD ["dev"]
