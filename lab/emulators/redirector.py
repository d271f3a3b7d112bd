#!/usr/bin/env python3
"""STAND-IN for the nginx in front of Scalelite, b3scale and BigBlueButton that redirects: every
request is answered `301 Moved Permanently` with `Location: TO + path?query`, as nginx's

    server { listen 80; return 301 https://$host$request_uri; }

does (scalelite-run's and bbb-install's nginx sites). The request's body is read first, as
nginx does. Prints "redirector listening on HOST:PORT" when ready; `--tls-cert`/`--tls-key`
serve HTTPS (to test a redirect from HTTPS, such as a downgrade). For tests only.
"""

import argparse
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "redirector"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        body = b"<html><head><title>301 Moved Permanently</title></head></html>\n"
        self.send_response(301)
        self.send_header("Location", self.server.to + self.path)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = answer

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    p = argparse.ArgumentParser(description="STAND-IN of nginx's redirect (`return 301 TO$request_uri`) for tests.")
    p.add_argument("--listen", default="127.0.0.1:0", help="ADDRESS:PORT")
    p.add_argument("--to", required=True, help="scheme://host[:port] the Location starts with")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = Server((host.strip("[]"), int(port)), Handler)
    server.to = args.to.rstrip("/")
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key or args.tls_cert)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    h, p_ = server.server_address[:2]
    print("%s listening on %s:%d (STAND-IN for nginx's redirect)" % (NAME, h, p_), flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
