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
# The link gives jemalloc one path whatever the architecture's lib dir.
RUN apt-get update && apt-get install -y --no-install-recommends libvips42 libjemalloc2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/lib/"$(uname -m)"-linux-gnu/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2 \
    && useradd --system --home /data --create-home imgpipe
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_ARENA_MAX=2 \
    IMGPIPE_DATA_DIR=/data \
    IMGPIPE_HTTP_LISTEN=0.0.0.0:8080
COPY --from=build /out/imgpipe /usr/local/bin/imgpipe
USER imgpipe
VOLUME /data
EXPOSE 8080
# /dev/tcp is bash's (Debian's sh, dash, has none): GET /healthz, want 200.
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["imgpipe"]
CMD ["dev"]
