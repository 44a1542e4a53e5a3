# The sfu node's image: `make image` builds it (docker build -t edge-sfu .). Three stages: RNNoise's WebAssembly
# files and the background blur's segmentation model from npm, the binary built with cgo, and a Debian slim runtime
# with the libraries, models and files it loads. The apt packages here are the Makefile's (deps-audio, deps-captions): a test (cmd/sfu/docker_test.go)
# keeps them in step.
#
#   docker run --rm -e SFU_SECRET=... -p 7880:7880 -p 7882:7882/udp -p 7881:7881 \
#     [-v /srv/sfu/sfu.yaml:/etc/sfu/sfu.yaml:ro] [-v sfu-state:/var/lib/sfu] edge-sfu [-public-ip PUBLIC_IP]
#
# Behind NAT (docker's bridge network), give the host's public address (-public-ip, SFU_PUBLIC_IP or public-ip in
# the file) so that clients get a media address they can reach; or run with --network host.

# Debian 12, as the Makefile's machines: its PocketSphinx (0.8, with sphinxbase) is the one the cgo binding builds on.
ARG DEBIAN=bookworm

# --- npm: RNNoise (@echogarden/rnnoise-wasm) and the blur's model (@mediapipe/selfie_segmentation), pinned by
# package-lock.json ---------------------------------------------------------------------------------------------------
FROM node:22-${DEBIAN}-slim AS npm
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund  # not the type checker: the image needs the run-time packages only

# --- Build: Go with cgo (libopus, speexdsp, PocketSphinx, OpenCC), the Makefile's -dev packages ---------------------
FROM golang:1.26-${DEBIAN} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config libopus-dev libopusfile-dev libspeexdsp-dev libpocketsphinx-dev libsphinxbase-dev libopencc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -trimpath: the binary finds RNNoise beside itself (../share/sfu/rnnoise-wasm), not in a source tree.
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/sfu ./cmd/sfu

# --- Runtime: Debian slim with the shared libraries, the PocketSphinx model, OpenCC, Apertium ------------------------
FROM debian:${DEBIAN}-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopus0 libopusfile0 libspeexdsp1 libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us \
      libopencc1.1 opencc apertium apertium-eng-spa \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# A dedicated, unprivileged user; /var/lib/sfu holds the audit log (audit-dir: /var/lib/sfu/audit).
RUN useradd --system --home-dir /var/lib/sfu --no-create-home --shell /usr/sbin/nologin sfu \
 && install -d -o sfu -g sfu -m 0750 /var/lib/sfu
COPY --from=build /out/sfu /usr/local/bin/sfu
COPY --from=npm /src/node_modules/@echogarden/rnnoise-wasm /usr/local/share/sfu/rnnoise-wasm
# The background blur's segmentation model, which the node serves to the browser client (../share/sfu beside it).
COPY --from=npm /src/node_modules/@mediapipe/selfie_segmentation /usr/local/share/sfu/selfie_segmentation
# The sample, every flag at its default, as the config; mount your own over it. In a container the metrics
# listener must be reachable from outside the container's loopback: publish it to the monitoring network only.
COPY sfu.sample.yaml /etc/sfu/sfu.yaml
RUN sed -i 's/^metrics-addr: .*/metrics-addr: ":7889"/' /etc/sfu/sfu.yaml
USER sfu
WORKDIR /var/lib/sfu
VOLUME /var/lib/sfu

# HTTP and WebSocket: signaling (/ws), the browser client, WHIP/WHEP, the server API, /healthz and /readyz (addr).
EXPOSE 7880/tcp
# Media: every participant's RTP/RTCP over one UDP port (udp, the ICE UDP mux).
EXPOSE 7882/udp
# ICE-TCP: media for clients whose network blocks UDP (tcp).
EXPOSE 7881/tcp
# TURN, only when enabled (turn: ":3478"); its relay ports are turn-relay-port-range.
EXPOSE 3478/udp
# Prometheus /metrics (metrics-addr): for the monitoring network only, e.g. -p 127.0.0.1:7889:7889.
EXPOSE 7889/tcp

# /healthz answers 200 while the process lives (plain HTTP; with tls-cert the second try speaks HTTPS).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:7880/healthz || curl -fsSk https://127.0.0.1:7880/healthz || exit 1

# Extra arguments are flags, which win over SFU_* variables, which win over the file. Other subcommands:
# docker run --entrypoint /usr/local/bin/sfu edge-sfu token -room R -identity I ...
ENTRYPOINT ["/usr/local/bin/sfu", "-config", "/etc/sfu/sfu.yaml"]
