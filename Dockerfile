# Multi-stage build: compile with the official Swift image, run on slim Debian with only the
# runtime libraries (hiredis for RESP parsing, libcrypto for signatures).
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product reverb --static-swift-stdlib \
    && cp "$(swift build -c release --show-bin-path)/reverb" /usr/local/bin/reverb

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin reverb
COPY --from=build /usr/local/bin/reverb /usr/local/bin/reverb
WORKDIR /srv/reverb
USER reverb
EXPOSE 8080
ENV REVERB_SERVER_HOST=0.0.0.0 REVERB_SERVER_PORT=8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /up HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q health <&3"]
ENTRYPOINT ["/usr/local/bin/reverb"]
CMD ["start"]
