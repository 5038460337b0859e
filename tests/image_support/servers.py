#!/usr/bin/env python3
"""Loopback servers for the image import tests (tests/image_import.rs, via tests/image_support/mod.rs).

Each mode binds 127.0.0.1 on a free port, prints the port on one line, and
serves until killed:

  http DIR [CERT KEY]   files from DIR (https with CERT/KEY), plus:
                        /truncated/NAME  announces NAME's size, sends 1000 bytes, closes
                        /slow/NAME       sends NAME in 64 KiB pieces, 0.1 s apart
                        /nolength/NAME   no Content-Length (HTTP/1.0, ends at close)
  ftp DIR USER PASS     FTP (pyftpdlib): anonymous and USER/PASS, read-only
"""
import os
import ssl
import sys
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _special(self, prefix):
        name = self.path[len(prefix):]
        path = os.path.join(self.directory, os.path.basename(name))
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        with open(path, "rb") as f:
            return f.read()

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            data = self._special("/truncated/")
            if data is None:
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:1000])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/slow/"):
            data = self._special("/slow/")
            if data is None:
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i:i + 65536])
                self.wfile.flush()
                time.sleep(0.1)
            return
        if self.path.startswith("/nolength/"):
            data = self._special("/nolength/")
            if data is None:
                return
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.end_headers()
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i:i + 65536])
            self.close_connection = True
            return
        super().do_GET()


class QuietServer(ThreadingHTTPServer):
    # Clients that abort on purpose (full media, busy) break pipes: not news.
    def handle_error(self, request, client_address):
        pass


def serve_http(directory, cert=None, key=None):
    httpd = QuietServer(("127.0.0.1", 0), partial(Handler, directory=directory))
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def serve_ftp(directory, user, password):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer
    import logging
    logging.basicConfig(level=logging.WARNING)
    auth = DummyAuthorizer()
    auth.add_user(user, password, directory, perm="elr")
    auth.add_anonymous(directory, perm="elr")
    handler = FTPHandler
    handler.authorizer = auth
    handler.passive_ports = None
    server = FTPServer(("127.0.0.1", 0), handler)
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "http":
        serve_http(*sys.argv[2:])
    elif mode == "ftp":
        serve_ftp(*sys.argv[2:])
    else:
        sys.exit("unknown mode " + mode)
