# Multi-stage build: compile with the full Rust toolchain, ship only the binary
# on a minimal glibc base that runs as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin oauthd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/oauthd /usr/local/bin/oauthd
USER 65532:65532
EXPOSE 3030 50051
ENTRYPOINT ["/usr/local/bin/oauthd"]
CMD ["serve"]
