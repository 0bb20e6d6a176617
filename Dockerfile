# ringway in a scratch image: one static binary (the data plane is PID 1 and starts the
# control plane from the same file) and an empty /tmp for the control plane's IPC socket.
#
# No base image and no registry are needed. Build the static binary, then the image:
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --release --target x86_64-unknown-linux-gnu
#   docker build -t ringway .
#
# The default seccomp profile of recent Docker releases blocks io_uring: ringway then runs
# its workers on epoll and says so in its log ("I/O driver legacy"). To use io_uring, run the
# container with `--security-opt seccomp=unconfined` (or a profile that allows
# io_uring_setup, io_uring_enter and io_uring_register).
FROM scratch
COPY deploy/rootfs/ /
COPY target/x86_64-unknown-linux-gnu/release/ringway /ringway
EXPOSE 80 443
ENTRYPOINT ["/ringway"]
