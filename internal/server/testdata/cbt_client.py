# A GSS-API initiator with channel bindings (MIT krb5 through Debian's
# python3-gssapi), for the Extended Protection tests.
#
#   cbt_client.py URL MODE [CAFILE]
#
# MODE: "peer" binds to the certificate the server presents on this connection (what
# a Windows client does), "none" sends no bindings, "file:PATH" binds to the
# certificate in PATH (a token made for another TLS channel: a relay).
# The test certificates are signed with SHA-256, so the tls-server-end-point hash is
# SHA-256 (RFC 5929).
# Prints: status=N reason=CODE alice=0|1 mutual=True|False
import base64, hashlib, http.client, ssl, sys, urllib.parse
import gssapi

url, mode = sys.argv[1], sys.argv[2]
cafile = sys.argv[3] if len(sys.argv) > 3 else None
u = urllib.parse.urlsplit(url)
if u.scheme == "https":
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
else:
    conn = http.client.HTTPConnection(u.hostname, u.port)
conn.connect()

bindings = None
if mode == "peer":
    der = conn.sock.getpeercert(binary_form=True)
    bindings = gssapi.raw.ChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())
elif mode.startswith("file:"):
    der = ssl.PEM_cert_to_DER_cert(open(mode[5:]).read())
    bindings = gssapi.raw.ChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())
elif mode != "none":
    sys.exit("unknown mode " + mode)

name = gssapi.Name("HTTP@" + u.hostname, gssapi.NameType.hostbased_service)
sc = gssapi.SecurityContext(name=name, usage="initiate", channel_bindings=bindings,
    flags=gssapi.RequirementFlag.mutual_authentication)
tok = sc.step()
conn.request("GET", u.path or "/", headers={"Authorization": "Negotiate " + base64.b64encode(tok).decode()})
resp = conn.getresponse()
body = resp.read().decode(errors="replace")
mutual = False
hdr = resp.getheader("WWW-Authenticate") or ""
if resp.status == 200 and hdr.startswith("Negotiate "):
    sc.step(base64.b64decode(hdr.split(" ", 1)[1]))
    mutual = sc.complete
print("status=%d reason=%s alice=%d mutual=%s" % (resp.status, resp.getheader("Kerbgate-Reason") or "-",
    int("alice@EXAMPLE.TEST" in body), mutual))
