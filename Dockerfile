# Multi-stage build: compile with libvips headers, run with the libvips
# runtime only.
#   docker build -t imgpipe .
#   docker run -p 8080:8080 imgpipe
# The image listens on IMGPIPE_HTTP_LISTEN (0.0.0.0:8080), which the health
# check reads too: change the port with -e IMGPIPE_HTTP_LISTEN=…, not --listen.
FROM golang:1.26-bookworm AS build
# go.mod may name a newer 1.26 patch release than the image has; the image
# sets GOTOOLCHAIN=local, which would refuse to build then.
ENV GOTOOLCHAIN=auto
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
# The link gives jemalloc one path whatever the architecture's lib dir
# (the package's own file list says where it is).
RUN apt-get update && apt-get install -y --no-install-recommends libvips42 libjemalloc2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2 \
    && test -e /usr/local/lib/libjemalloc.so.2 \
    && useradd --system --home /data --create-home imgpipe
# (The limit of two arenas imgpipe sets for glibc's malloc means nothing
# to jemalloc.)
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    IMGPIPE_DATA_DIR=/data \
    IMGPIPE_HTTP_LISTEN=0.0.0.0:8080
COPY --from=build /out/imgpipe /usr/local/bin/imgpipe
USER imgpipe
VOLUME /data
EXPOSE 8080
# /dev/tcp is bash's (Debian's sh, dash, has none): GET /healthz on the
# port of IMGPIPE_HTTP_LISTEN, want 200.
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${IMGPIPE_HTTP_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["imgpipe"]
CMD ["dev"]
