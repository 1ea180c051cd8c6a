#!/usr/bin/env bash
# Regenerates the seed corpora (fuzz/corpus/ is git-ignored) from shared/ test data:
#   parse_push  <- shared/fixtures/*.xml + the `xml` field of shared/peer-vectors/messages.jsonl
#   decrypt     <- the Encrypt texts and plaintexts of shared/fixtures/crypto.json and
#                  shared/peer-vectors/crypto.jsonl, prefixed with the target's key/mode byte
#   reply       <- the parse_push seeds' bytes (libFuzzer's `arbitrary` input reads them as strings)
# Files are named by the SHA-1 of their content, as libFuzzer names them, so re-running adds nothing
# twice. Usage: fuzz/seed.sh [SHARED_DIR]  (default: the nearest ancestor's shared/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${1:-${SHARED_DIR:-}}"
if [[ -z "$shared" ]]; then
    dir="$here"
    while [[ "$dir" != / ]]; do
        if [[ -f "$dir/shared/CONTRACT.md" ]]; then shared="$dir/shared"; break; fi
        dir="$(dirname "$dir")"
    done
fi
[[ -n "$shared" && -d "$shared/fixtures" ]] || { echo "seed.sh: no shared/ with fixtures found; pass its path" >&2; exit 1; }

python3 - "$shared" "$here/corpus" <<'PY'
import glob, hashlib, json, os, sys

shared, corpus = sys.argv[1], sys.argv[2]
counts = {}

def put(target, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    path = os.path.join(corpus, target, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1

# parse_push (and reply): every XML body we have.
xmls = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(shared, "fixtures", "*.xml")))]
with open(os.path.join(shared, "peer-vectors", "messages.jsonl"), encoding="utf-8") as f:
    for line in f:
        if line.strip():
            xml = json.loads(line).get("xml")
            if xml:
                xmls.append(xml.encode("utf-8"))
for xml in xmls:
    put("parse_push", xml)
    put("reply", xml)

# decrypt: byte 0 = key index (bits 0-1, see ACCOUNTS in fuzz_targets/decrypt.rs) | mode << 2.
accounts = {
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG": 0,
    "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C": 1,
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA": 2,
    "kdjCGGJKSRjjhESfPO5lTSWtYS0v5pQX47skCkZczip": 3,
}
vectors = json.load(open(os.path.join(shared, "fixtures", "crypto.json"), encoding="utf-8"))["vectors"]
with open(os.path.join(shared, "peer-vectors", "crypto.jsonl"), encoding="utf-8") as f:
    vectors += [json.loads(line) for line in f if line.strip()]
for v in vectors:
    key = accounts.get(v.get("encoding_aes_key") or "", 0)
    for text in (v.get("encrypt"), v.get("expected_encrypt")):
        if text:
            put("decrypt", bytes([key | 0 << 2]) + text.encode())  # mode 0: Encrypt text
    for plain in (v.get("expected_plaintext"), v.get("plaintext"), v.get("expected_plaintext_xml")):
        if plain:
            put("decrypt", bytes([key | 3 << 2]) + plain.encode())  # mode 3: round trip
for key in range(4):
    put("decrypt", bytes([key | 1 << 2]) + bytes(32))  # mode 1: raw ciphertext
    # mode 2: a valid plaintext layout with an empty message and no receive id, pad 12
    put("decrypt", bytes([key | 2 << 2]) + b"0123456789abcdef" + bytes(4) + bytes([12]) * 12)

for target in ("parse_push", "decrypt", "reply"):
    total = len(os.listdir(os.path.join(corpus, target)))
    print(f"{target}: {counts.get(target, 0)} new, {total} in {os.path.join(corpus, target)}")
PY
