#!/usr/bin/env python3
"""A minimal IMAP IDLE server for the push benchmarks: TLS, LOGIN or
AUTHENTICATE PLAIN (any password), CAPABILITY, EXAMINE, LIST (no folders),
IDLE/DONE, NOOP, LOGOUT. Counts logins in a file (one line per second:
"UNIX-TIME LOGINS-SO-FAR") so the bench can measure connect rates.

usage: push-idle-server.py PORT CERT KEY COUNTFILE
"""
import asyncio, resource, ssl, sys, time

port, cert, key, countfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
logins = 0
CAPS = b"IMAP4rev1 IDLE AUTH=PLAIN SASL-IR"


async def handle(reader, writer):
    global logins
    writer.write(b"* OK [CAPABILITY " + CAPS + b"] ready\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            parts = line.rstrip(b"\r\n").split(b" ", 2)
            if len(parts) < 2:
                continue
            tag, cmd = parts[0], parts[1].upper()
            if cmd in (b"LOGIN", b"AUTHENTICATE"):
                logins += 1
                writer.write(tag + b" OK [CAPABILITY " + CAPS + b"] logged in\r\n")
            elif cmd == b"CAPABILITY":
                writer.write(b"* CAPABILITY " + CAPS + b"\r\n" + tag + b" OK done\r\n")
            elif cmd == b"EXAMINE":
                writer.write(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 1] x\r\n" +
                             tag + b" OK [READ-ONLY] done\r\n")
            elif cmd == b"IDLE":
                writer.write(b"+ idling\r\n")
                await writer.drain()
                done = await reader.readline()
                if not done:
                    break
                writer.write(tag + b" OK idle done\r\n")
            elif cmd == b"LOGOUT":
                writer.write(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                await writer.drain()
                break
            else:
                writer.write(tag + b" OK done\r\n")
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    writer.close()


async def counter():
    while True:
        with open(countfile, "a") as f:
            f.write("%.3f %d\n" % (time.time(), logins))
        await asyncio.sleep(1)


async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx, backlog=4096,
                                     reuse_address=True)
    asyncio.ensure_future(counter())
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
