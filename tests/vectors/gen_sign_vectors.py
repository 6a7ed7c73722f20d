"""Writes sign.json: the signed-URL vectors shared by the Rust checker (shared/src/sign.rs) and
the CloudFront Function (edge/viewer-request.js). Signatures are computed here, with Python's
hmac, as a third implementation of the scheme in docs/signing.md:

    string to sign = "PF1\n" + path + "\n" + signed params + "\n" + exp + "\n" + kid
    sig            = base64url, unpadded, of HMAC-SHA256(key = the secret's UTF-8 bytes)

where `signed params` are the query pieces named w, h, fmt, q or dpr (any case), exactly as sent,
in the order sent, joined by '&'.

    python3 tests/vectors/gen_sign_vectors.py   # rewrites tests/vectors/sign.json
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path

NOW = 1_795_600_000
SIGNED = {"sign": True, "keys": {"k2026a": "s3cr3t-old-4f9c", "k2026b": "s3cr3t-new-77aa"},
          "referers": ["shop.example.com", "*.acme.example"]}
ROTATED = {"sign": True, "keys": {"k2026b": "s3cr3t-new-77aa"}, "referers": []}
OPEN = {"sign": False, "keys": {}, "referers": []}
OPEN_REFERERS = {"sign": False, "keys": {}, "referers": ["shop.example.com"]}


def signed_params(query: str) -> str:
    keep = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = piece.split("=", 1)[0]
        if name.lower() in ("w", "h", "fmt", "q", "dpr"):
            keep.append(piece)
    return "&".join(keep)


def sig(secret: str, path: str, query: str, exp: int, kid: str) -> str:
    msg = f"PF1\n{path}\n{signed_params(query)}\n{exp}\n{kid}".encode()
    mac = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def url(path: str, query: str, exp: int, kid: str, secret: str, extra: str = "") -> str:
    s = sig(secret, path, query, exp, kid)
    q = "&".join(p for p in [query, f"exp={exp}", f"kid={kid}", f"sig={s}", extra] if p)
    return f"{path}?{q}"


P = "/img/acme/v3/products/red-shoe.jpg"
Q = "w=300&fmt=webp&utm_source=mail"
OLD, NEW = SIGNED["keys"]["k2026a"], SIGNED["keys"]["k2026b"]
good = url(P, Q, NOW + 3600, "k2026a", OLD)
cases = [
    ("valid, old key", SIGNED, good, None, "ok"),
    ("valid, new key (overlap)", SIGNED, url(P, Q, NOW + 3600, "k2026b", NEW), None, "ok"),
    ("junk added after signing is ignored", SIGNED, good + "&utm_campaign=x&cachebust=9", None, "ok"),
    ("no parameters signed", SIGNED, url(P, "", NOW + 60, "k2026b", NEW), None, "ok"),
    ("parameter order as sent matters", SIGNED,
     url(P, "fmt=webp&w=300", NOW + 60, "k2026b", NEW).replace("fmt=webp&w=300", "w=300&fmt=webp"),
     None, "bad signature"),
    ("changed width", SIGNED, good.replace("w=300", "w=301"), None, "bad signature"),
    ("added allowlisted parameter", SIGNED, good + "&q=90", None, "bad signature"),
    ("dpr is signed", SIGNED, url(P, "w=300&dpr=2&fmt=webp", NOW + 60, "k2026b", NEW), None, "ok"),
    ("changed dpr", SIGNED, url(P, "w=300&dpr=2&fmt=webp", NOW + 60, "k2026b", NEW).replace("dpr=2", "dpr=3"),
     None, "bad signature"),
    ("added dpr", SIGNED, good + "&DPR=3", None, "bad signature"),
    ("other path (out of scope)", SIGNED, good.replace("red-shoe", "blue-shoe"), None, "bad signature"),
    ("other version (out of scope)", SIGNED, good.replace("/v3/", "/v4/"), None, "bad signature"),
    ("cross-tenant: acme's signature on globex's path", SIGNED, good.replace("/img/acme/", "/img/globex/"),
     None, "bad signature"),
    ("expired", SIGNED, url(P, Q, NOW - 1, "k2026a", OLD), None, "expired"),
    ("expiry equal to now is expired", SIGNED, url(P, Q, NOW, "k2026a", OLD), None, "expired"),
    ("forged signature", SIGNED, good[: good.index("sig=") + 4] + "A" * 43, None, "bad signature"),
    ("signature by an unknown secret", SIGNED, url(P, Q, NOW + 60, "k2026a", "guess"), None, "bad signature"),
    ("retired key after rotation", ROTATED, good, None, "unknown key"),
    ("new key after rotation", ROTATED, url(P, Q, NOW + 3600, "k2026b", NEW), None, "ok"),
    ("unsigned URL on a signing tenant", SIGNED, f"{P}?{Q}", None, "signature required"),
    ("missing sig", SIGNED, f"{P}?{Q}&exp={NOW + 60}&kid=k2026a", None, "signature required"),
    ("exp not a number", SIGNED, good.replace(f"exp={NOW + 3600}", "exp=soon"), None, "bad signature parameters"),
    ("exp twice", SIGNED, good + f"&exp={NOW + 7200}", None, "bad signature parameters"),
    ("sig twice", SIGNED, good + "&sig=AAAA", None, "bad signature parameters"),
    ("empty kid", SIGNED, f"{P}?{Q}&exp={NOW + 60}&kid=&sig=" + "A" * 43, None, "bad signature parameters"),
    ("allowed referer", SIGNED, good, "https://shop.example.com/cart", "ok"),
    ("allowed wildcard referer", SIGNED, good, "https://img.cdn.acme.example/x", "ok"),
    ("wildcard does not match the bare domain", SIGNED, good, "https://acme.example/", "hotlink refused"),
    ("hotlink", SIGNED, good, "https://evil.example.net/page", "hotlink refused"),
    ("referer host compared without port and case", SIGNED, good, "HTTPS://Shop.Example.com:8443/a", "ok"),
    ("no referer is allowed", SIGNED, good, None, "ok"),
    ("open tenant: unsigned", OPEN, f"{P}?{Q}", None, "ok"),
    ("open tenant: signature parameters ignored", OPEN, f"{P}?{Q}&exp=1&kid=x&sig=y", None, "ok"),
    ("open tenant with referers: hotlink", OPEN_REFERERS, f"{P}?{Q}", "http://evil.example/", "hotlink refused"),
]

out = {
    "comment": "Generated by tests/vectors/gen_sign_vectors.py; do not edit by hand.",
    "now": NOW,
    "cases": [
        {"name": n, "tenant": t, "uri": u, "referer": r, "expect": e} for n, t, u, r, e in cases
    ],
}
Path(__file__).with_name("sign.json").write_text(json.dumps(out, indent=2) + "\n")
print(f"wrote {len(cases)} cases")
