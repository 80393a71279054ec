#!/usr/bin/env python3
"""Sends one SIP message (or any bytes) to a node over UDP, TCP or TLS and reports
what came back, as one line on stdout:

    codes=400 warning=1 closed=peer pong=0 sent=1 first="SIP/2.0 400 Bad Request"

  codes    status codes of the SIP responses received, comma-separated ("-": none)
  warning  1 if the first response carries a Warning header
  closed   stream only: "peer" (the node closed the connection by itself),
           "shutdown" (it closed once we half-closed / sent close_notify),
           "no" (still open after that); "-" for UDP
  pong     1 if what came back is only CRLFs (keep-alive answer)
  sent     1 if every byte was sent, 0 if the node closed first

Templates (*.sip) have LF line ends turned into CRLF and these placeholders filled:
@PORT@ @LPORT@ @TRANSPORT@ @BRANCH@ @CALLID@ @TAG@ @NUL@ (a NUL byte),
@PAD1M@ (1 MiB of 'a'), @CLEN@ (length of the body after the blank line).
Other files are sent byte for byte.

When the node answers an INVITE with a final non-2xx response, an ACK is sent so the
node's server transaction ends. Exit status: 0 when the message was delivered (or the
node closed on it), 2 when the node could not be reached.

Only the Python standard library is used; every wait is bounded.
"""

import argparse
import os
import re
import socket
import ssl
import sys
import time

CRLF = b"\r\n"
STATUS_RE = re.compile(rb"(?:^|\r\n)SIP/2\.0 (\d{3})[^\r\n]*")


def render(path, transport, port, lport):
    with open(path, "rb") as f:
        data = f.read()
    if not path.endswith(".sip"):
        return data
    data = data.replace(CRLF, b"\n").replace(b"\n", CRLF)
    token = os.urandom(6).hex()
    subs = {
        b"@PORT@": str(port).encode(),
        b"@LPORT@": str(lport).encode(),
        b"@TRANSPORT@": transport.upper().encode(),
        b"@BRANCH@": b"z9hG4bK-it-" + token.encode(),
        b"@CALLID@": b"it-" + token.encode() + b"@127.0.0.1",
        b"@TAG@": b"t" + token.encode(),
        b"@NUL@": b"\x00",
        b"@PAD1M@": b"a" * (1 << 20),
    }
    for key, value in subs.items():
        data = data.replace(key, value)
    head, sep, body = data.partition(CRLF + CRLF)
    if sep:
        data = head.replace(b"@CLEN@", str(len(body)).encode()) + sep + body
    return data


def responses(buf):
    """(codes, first response's header block) of the SIP responses in buf."""
    codes = [int(m.group(1)) for m in STATUS_RE.finditer(buf)]
    first = b""
    m = STATUS_RE.search(buf)
    if m:
        start = m.start() + (2 if buf[m.start():m.start() + 2] == CRLF else 0)
        end = buf.find(CRLF + CRLF, start)
        first = buf[start:end if end >= 0 else len(buf)]
    return codes, first


def complete(buf):
    """True when buf holds at least one whole response (or only CRLF pongs)."""
    if buf and buf.strip(b"\r\n") == b"":
        return True
    end = buf.find(CRLF + CRLF)
    if end < 0:
        return False
    m = re.search(rb"\r\n(?:Content-Length|l)[ \t]*:[ \t]*(\d+)", buf[:end], re.I)
    clen = int(m.group(1)) if m else 0
    return len(buf) >= end + 4 + clen


def header(msg, name):
    """First value of header `name` (or its compact form) in a message, or None."""
    compact = {b"via": b"v", b"from": b"f", b"to": b"t", b"call-id": b"i"}
    names = {name.lower(), compact.get(name.lower(), name.lower())}
    for line in msg.split(CRLF)[1:]:
        if not line:
            break
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() in names:
            return value.strip()
    return None


def make_ack(request, first):
    """ACK for a non-2xx final response to an INVITE, or None if not applicable."""
    if not request.startswith(b"INVITE "):
        return None
    reqline = request.split(CRLF, 1)[0].split(b" ")
    via, frm, callid = header(request, b"Via"), header(request, b"From"), header(request, b"Call-ID")
    cseq, to = header(request, b"CSeq"), header(first, b"To")
    if not (via and frm and callid and cseq and to and len(reqline) == 3):
        return None
    num = cseq.split()[0]
    lines = [b"ACK " + reqline[1] + b" SIP/2.0", b"Via: " + via, b"Max-Forwards: 70",
             b"From: " + frm, b"To: " + to, b"Call-ID: " + callid, b"CSeq: " + num + b" ACK",
             b"Content-Length: 0", b"", b""]
    return CRLF.join(lines)


def final_non2xx(codes):
    return any(c >= 300 for c in codes)


def run_udp(args, out):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, 0))
    data = render(args.file, "udp", args.port, sock.getsockname()[1])
    try:
        sock.sendto(data, (args.host, args.port))
    except OSError as e:
        print(f"sipsend: cannot send {len(data)} bytes over UDP: {e}", file=sys.stderr)
        out["sent"] = 0
        return 0
    buf = b""
    deadline = time.monotonic() + args.wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            dgram = sock.recv(65536)
        except socket.timeout:
            break
        buf += dgram if not buf else CRLF + dgram
        deadline = min(deadline, time.monotonic() + 0.3)
    codes, first = responses(buf)
    if final_non2xx(codes):
        ack = make_ack(data, first)
        if ack:
            sock.sendto(ack, (args.host, args.port))
    sock.close()
    out.update(raw=buf, closed="-")
    return 0


def recv_some(sock, timeout):
    """(bytes, eof) from sock within timeout; eof True when the peer closed."""
    sock.settimeout(max(timeout, 0.01))
    try:
        chunk = sock.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        return b"", False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return b"", True
    return chunk, chunk == b""


def run_stream(args, out):
    # generous: a sanitizer build on a loaded 2-core machine can take seconds to
    # finish a handshake; the answer itself is still bounded by --wait
    raw = socket.create_connection((args.host, args.port), timeout=15)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = raw
    lport = raw.getsockname()[1]
    if args.transport == "tls":
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key)
        sock = ctx.wrap_socket(raw, server_hostname=args.servername)
    data = render(args.file, args.transport, args.port, lport)
    closed = "no"
    try:
        sock.settimeout(10)
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
        out["sent"] = 0
        closed = "peer"
    buf = b""
    deadline = time.monotonic() + args.wait
    acked = False
    while closed == "no":
        left = deadline - time.monotonic()
        if left <= 0:
            break
        chunk, eof = recv_some(sock, left)
        buf += chunk
        if eof:
            closed = "peer"
            break
        if chunk and complete(buf):
            # wait briefly for more (a 400 followed by a close, or a second pong)
            deadline = min(deadline, time.monotonic() + 0.3)
        codes, first = responses(buf)
        if not acked and final_non2xx(codes) and complete(buf):
            acked = True
            ack = make_ack(data, first)
            if ack:
                try:
                    sock.sendall(ack)
                except OSError:
                    pass
    if closed == "no":
        # our side is done: the node must notice and close
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(args.close_wait)
                try:
                    sock = sock.unwrap()
                except (ssl.SSLError, OSError):
                    pass
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + args.close_wait
        while time.monotonic() < deadline:
            chunk, eof = recv_some(sock, deadline - time.monotonic())
            if eof:
                closed = "shutdown"
                break
    out.update(raw=buf, closed=closed)
    sock.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--transport", choices=("udp", "tcp", "tls"), required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", help="CA file to verify the node's certificate (TLS)")
    ap.add_argument("--cert", help="client certificate (TLS)")
    ap.add_argument("--key", help="client key (TLS)")
    ap.add_argument("--servername", default="sip.example.test")
    ap.add_argument("--wait", type=float, default=5.0,
                    help="seconds to wait for an answer (ends early once one is complete,\n"
                         "or the node closes)")
    ap.add_argument("--close-wait", type=float, default=10.0,
                    help="stream: seconds to wait for the node to close after we half-close")
    ap.add_argument("file")
    args = ap.parse_args()

    out = {"sent": 1, "raw": b"", "closed": "-"}
    try:
        if args.transport == "udp":
            run_udp(args, out)
        else:
            run_stream(args, out)
    except (ConnectionRefusedError, socket.timeout, ssl.SSLError) as e:
        print(f"sipsend: cannot reach {args.host}:{args.port} over {args.transport}: {e}",
              file=sys.stderr)
        return 2
    buf = out["raw"]
    codes, first = responses(buf)
    warning = 1 if first and header(first, b"Warning") is not None else 0
    pong = 1 if buf and buf.strip(b"\r\n") == b"" else 0
    first_line = first.split(CRLF, 1)[0].decode("latin-1") if first else ""
    first_line = first_line.replace('"', "'")
    print(f"codes={','.join(map(str, codes)) or '-'} warning={warning} closed={out['closed']} "
          f"pong={pong} sent={out['sent']} first=\"{first_line}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
