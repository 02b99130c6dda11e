#!/usr/bin/env python3
"""An outsider's check of a ConsentLedger tenant's audit log, from its HTTP API alone.

Written from the standards, not from the service's code:
  - RFC 9162 section 2.1: leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right), MTH,
    and the inclusion (2.1.3.2) and consistency (2.1.4.2) proof verification algorithms;
  - RFC 8785 (JCS) for the entry bytes: the service's events hold strings, integers, booleans, arrays and
    objects only, for which JCS is sorted keys, no white space, minimal string escapes and integers as digits;
  - C2SP signed-note and tlog-checkpoint for the checkpoint and its Ed25519 signature.

Usage: verify_audit_log.py --url http://127.0.0.1:8080 --key <dpo API key> [--previous saved.note] [--save out.note]
       verify_audit_log.py --bundle export.json --pin <verifier key>
The second form checks a data-subject export offline: its checkpoint's signature, and that every audit event in it
hashes to a leaf that its inclusion proof places under the signed root.
Exits 0 when everything holds, 1 with the reason otherwise.
"""
import argparse
import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failure(Exception):
    pass


def get(base, key, path, accept="application/json"):
    request = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + key, "Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """RFC 9162 2.1.1, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def jcs(value):
    """RFC 8785 for the JSON types the events use; floats would need ECMAScript number formatting."""
    def check(v):
        if isinstance(v, float):
            raise Failure("an event holds a non-integer number, which this checker does not canonicalise")
        if isinstance(v, dict):
            for item in v.values():
                check(item)
        if isinstance(v, list):
            for item in v:
                check(item)
    check(value)
    # Python sorts keys by code point; JCS by UTF-16 code unit. They agree unless keys hold characters
    # beyond U+FFFF next to ones from U+E000 to U+FFFF, so sort explicitly by UTF-16.
    def canonical(v):
        if isinstance(v, dict):
            items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(x) for k, x in items) + "}"
        if isinstance(v, list):
            return "[" + ",".join(canonical(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=False)
    return canonical(value).encode("utf-8")


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, path):
    """RFC 9162 2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if not path or first == 0 or first > second:
        return False
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def parse_verifier_key(text):
    name, key_hash, key = text.split("+", 2)
    raw = base64.b64decode(key)
    if len(raw) != 33 or raw[0] != 1:
        raise Failure("the verifier key is not an Ed25519 note key")
    if sha256(name.encode() + b"\n" + raw)[:4].hex() != key_hash:
        raise Failure("the verifier key's hash does not match its name and key")
    return name, bytes.fromhex(key_hash), raw[1:]


def verify_note(note, name, key_hash, public_key):
    """C2SP signed-note: text, blank line, signature lines '— <name> <base64(key hash || signature)>'.
    Returns the text when it carries a valid signature by the key."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Failure("not a signed note")
    text, signatures = note[: split + 1], note[split + 2 :].splitlines()
    for line in signatures:
        if not line.startswith("\u2014 "):
            raise Failure("malformed signature line")
        signer, blob = line[2:].split(" ", 1)
        raw = base64.b64decode(blob)
        if signer == name and raw[:4] == key_hash:
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(raw[4:], text.encode())
            except InvalidSignature:
                raise Failure("the note's signature does not verify")
            return text
    raise Failure("the note carries no signature by the published key")


def open_checkpoint(note, name, key_hash, public_key):
    """C2SP tlog-checkpoint: origin, size, base64 root hash."""
    origin, size, root = verify_note(note, name, key_hash, public_key).split("\n")[:3]
    if origin != name:
        raise Failure("the checkpoint's origin is not the key's name")
    return int(size), base64.b64decode(root)


def self_test():
    """The checker's own parts against published vectors, and that it says no to altered input."""
    vector = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    leaves = [leaf_hash(bytes.fromhex(x)) for x in vector]
    assert mth(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"  # RFC 6962 reference
    # Inclusion of leaf 2 in the 8-leaf tree, by the definition, then altered.
    path = [leaves[3], node_hash(leaves[0], leaves[1]), mth(leaves[4:])]
    assert verify_inclusion(leaves[2], 2, 8, path, mth(leaves))
    assert not verify_inclusion(leaves[2], 3, 8, path, mth(leaves))
    assert not verify_inclusion(leaves[2], 2, 8, [path[1], path[0], path[2]], mth(leaves))
    # Consistency of 6 with 8: PROOF(6, D[8]) = [MTH(D[4:6]), MTH(D[6:8]), MTH(D[0:4])].
    proof = [mth(leaves[4:6]), mth(leaves[6:8]), mth(leaves[:4])]
    assert verify_consistency(6, 8, mth(leaves[:6]), mth(leaves), proof)
    assert not verify_consistency(6, 8, mth(leaves[:5]), mth(leaves), proof)
    # The C2SP signed-note example of golang.org/x/mod/sumdb/note.
    name, key_hash, key = parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    note = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
            "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
    assert verify_note(note, name, key_hash, key).startswith("If you think")
    try:
        verify_note(note.replace("think", "thinks"), name, key_hash, key)
        raise AssertionError("an altered note verified")
    except Failure:
        pass
    assert jcs({"b": [1, True, None], "a": "\u20ac\n\"\\"}) == '{"a":"\u20ac\\n\\"\\\\","b":[1,true,null]}'.encode()
    print("self-test ok")


def verify_bundle(path, pin):
    """A subject export proves its own record: no request to the service is needed."""
    bundle = json.load(open(path))
    checkpoint = bundle["checkpoint"]
    if pin and checkpoint["verifierKey"] != pin:
        raise Failure("the bundle's verifier key is not the pinned one")
    name, key_hash, public_key = parse_verifier_key(pin or checkpoint["verifierKey"])
    size, root = open_checkpoint(checkpoint["note"], name, key_hash, public_key)
    if size != checkpoint["treeSize"] or base64.b64encode(root).decode() != checkpoint["rootHash"]:
        raise Failure("the bundle's tree size or root is not the signed one")
    events = bundle["auditEvents"]
    if not events:
        raise Failure("the bundle holds no audit events")
    for event in events:
        proof = event.pop("inclusionProof")
        claimed = base64.b64decode(event.pop("leafHash"))
        leaf = leaf_hash(jcs(event))
        if leaf != claimed:
            raise Failure(f"seq {event['seq']}: leafHash is not the hash of the event")
        if proof["leafIndex"] != event["seq"] or proof["treeSize"] != size:
            raise Failure(f"seq {event['seq']}: the proof is for another leaf or tree")
        if not verify_inclusion(leaf, event["seq"], size, [base64.b64decode(h) for h in proof["hashes"]], root):
            raise Failure(f"seq {event['seq']}: the inclusion proof does not verify")
    # Imported rows (issue 22): each row's leaf is the JCS of its fields, and its proof leads to the Merkle root
    # that its batch's event (proven above) holds.
    roots = {(e["data"]["importId"], e["data"]["batch"]): bytes.fromhex(e["data"]["root"])
             for e in events if e["action"] == "import.batch_recorded"}
    rows = bundle.get("importedRows", [])
    for row in rows:
        fields = {k: row[k] for k in ("importId", "line", "outcome", "rowKey", "subjectRef") if k in row}
        leaf = leaf_hash(jcs(fields))
        if leaf != base64.b64decode(row["leafHash"]):
            raise Failure(f"import {row['importId']} line {row['line']}: leafHash is not the hash of the row")
        root_of_batch = roots.get((row["importId"], row["batch"]))
        if root_of_batch is None:
            raise Failure(f"import {row['importId']} line {row['line']}: no proven event for its batch")
        proof = row["batchProof"]
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        if not verify_inclusion(leaf, proof["leafIndex"], proof["batchSize"], hashes, root_of_batch):
            raise Failure(f"import {row['importId']} line {row['line']}: the proof does not lead to the batch's root")
    print(f"ok: {name}: {len(events)} events and {len(rows)} imported rows of the subject's export are in the "
          f"signed tree of size {size}")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if sys.argv[1:2] == ["--bundle"]:
        parser = argparse.ArgumentParser(description="Verify a data-subject export bundle offline")
        parser.add_argument("--bundle", required=True)
        parser.add_argument("--pin", help="the verifier key the operator gave you out of band")
        args = parser.parse_args()
        try:
            verify_bundle(args.bundle, args.pin)
            return 0
        except Failure as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            return 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True, help="an API key with the dpo scope")
    parser.add_argument("--previous", help="a checkpoint saved by an earlier run, to check consistency with")
    parser.add_argument("--save", help="where to save this run's checkpoint")
    parser.add_argument("--pin", help="the verifier key the operator gave you out of band")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    try:
        published = json.loads(get(base, args.key, "/v1/audit/key"))
        verifier_key = published["verifierKey"]
        if args.pin and args.pin != verifier_key:
            raise Failure("the published verifier key is not the pinned one")
        name, key_hash, public_key = parse_verifier_key(verifier_key)
        if base64.b64decode(published["publicKey"]) != public_key:
            raise Failure("publicKey and verifierKey disagree")

        note = get(base, args.key, "/v1/audit/checkpoint", "text/plain").decode()
        size, root = open_checkpoint(note, name, key_hash, public_key)

        leaves, after = [], None
        while True:
            page = json.loads(get(base, args.key, "/v1/audit/events?limit=1000" + ("" if after is None else f"&after={after}")))
            for event in page["events"]:
                if event["seq"] != len(leaves):
                    raise Failure(f"seq {len(leaves)} is missing (found {event['seq']})")
                claimed = base64.b64decode(event.pop("leafHash"))
                if leaf_hash(jcs(event)) != claimed:
                    raise Failure(f"seq {event['seq']}: leafHash is not the hash of the event")
                leaves.append(claimed)
            after = page.get("next")
            if after is None:
                break
        if len(leaves) < size:
            raise Failure(f"the checkpoint covers {size} events but the API lists {len(leaves)}")
        if mth(leaves[:size]) != root:
            raise Failure("the root of the listed events is not the signed root")

        for seq in range(size):
            proof = json.loads(get(base, args.key, f"/v1/audit/proofs/inclusion?seq={seq}&treeSize={size}"))
            path = [base64.b64decode(h) for h in proof["hashes"]]
            if not verify_inclusion(leaves[seq], seq, size, path, root):
                raise Failure(f"the inclusion proof of seq {seq} does not verify")

        checked_consistency = ""
        if args.previous:
            old_size, old_root = open_checkpoint(open(args.previous).read(), name, key_hash, public_key)
            if old_size > 0:
                proof = json.loads(get(base, args.key, f"/v1/audit/proofs/consistency?from={old_size}&to={size}"))
                path = [base64.b64decode(h) for h in proof["hashes"]]
                if not verify_consistency(old_size, size, old_root, root, path):
                    raise Failure(f"the log of size {size} is not an extension of the saved one of size {old_size}")
                checked_consistency = f", consistent with the saved checkpoint of size {old_size}"
        if args.save:
            with open(args.save, "w") as out:
                out.write(note)
        print(f"ok: {name}: {size} events, signed checkpoint, every leaf hash and inclusion proof verified{checked_consistency}")
        return 0
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
